"""A grammar-based fuzzer for the analysts' Cypher guard (graph_api.cypher_guard).

At the parser level, over thousands of generated queries (tests/cypher_strategies.py):
(a) an accepted query's canonical text is a fixed point of `check`;
(b) the canonical text, lexed by the ANTLR lexer on its own (not the guard's tree walk), calls only
    allowed functions and holds only reading keywords;
(c) no accepted query holds a forbidden word (LOAD, COPY, CALL, CREATE, …), a comment or a second
    statement outside its string literals and backtick names;
(d) `check` raises nothing but CypherRefused.
Then a sample of accepted queries runs on the demo's served Ladybug graph, opened read-only in a
subprocess per batch: no query may kill the process, and the graph file must not change.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from antlr4 import InputStream
from antlr4.error.ErrorListener import ErrorListener
from antlr4_cypher import CypherLexer
from hypothesis import HealthCheck, given, settings

from graph_api import cypher_guard
from graph_api.cypher_guard import ALLOWED_FUNCTIONS, CypherRefused, check
from graph_api.store import open_store
from tests.cypher_strategies import queries, reading_queries
from tests.graph_dump import dump
from tests.budget import examples

L = CypherLexer
READING_KEYWORDS = {
    L.MATCH, L.OPTIONAL, L.WHERE, L.WITH, L.UNWIND, L.AS, L.RETURN, L.DISTINCT, L.ORDER, L.BY, L.ASC,
    L.ASCENDING, L.DESC, L.DESCENDING, L.SKIP_W, L.LIMIT, L.UNION, L.ALL, L.AND, L.OR, L.XOR, L.NOT, L.IN,
    L.IS, L.NULL_W, L.TRUE, L.FALSE, L.CASE, L.WHEN, L.THEN, L.ELSE, L.END, L.STARTS, L.ENDS, L.CONTAINS,
    L.COUNT, L.ANY, L.NONE, L.SINGLE, L.EXISTS,
}
KEYWORDS = set(range(L.CALL, L.DROP + 1))
NAMES = {L.ID, L.ESC_LITERAL}
# Words that start a clause that writes, administers or leaves the graph, in Ladybug or Neo4j.
FORBIDDEN_WORDS = {
    "LOAD", "COPY", "INSTALL", "UNINSTALL", "ATTACH", "DETACH", "CHECKPOINT", "EXPORT", "IMPORT", "USE", "CALL",
    "CREATE", "MERGE", "SET", "DELETE", "REMOVE", "DROP", "ALTER", "FOREACH", "BEGIN", "COMMIT", "ROLLBACK",
    "YIELD", "MACRO", "PROJECT", "SHOW", "TERMINATE", "FROM", "TO",
}
FUZZ = settings(max_examples=examples(1000), derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


class _Raise(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802, N803
        raise AssertionError(f"the canonical text does not lex: {msg}")


def _tokens(text: str) -> list:
    lexer = CypherLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    return lexer.getAllTokens()


def assert_only_allowed(canonical: str) -> None:
    """(b) and (c), from the lexer's tokens alone."""
    tokens = _tokens(canonical)
    assert all(t.text == " " for t in tokens if t.type == L.SP), "comments and line breaks are gone"
    code = [t for t in tokens if t.type != L.SP]
    assert all(t.type != L.SEMI for t in code), "one statement, no `;`"
    for i, token in enumerate(code):
        following = code[i + 1] if i + 1 < len(code) else None
        if token.type in KEYWORDS:
            assert token.type in READING_KEYWORDS, f"keyword {token.text} in {canonical!r}"
        if token.type == L.ID:
            assert token.text.upper() not in FORBIDDEN_WORDS, f"bare {token.text} in {canonical!r}"
        if token.type in NAMES and following is not None and following.type == L.LPAREN:
            assert token.type == L.ID and token.text in ALLOWED_FUNCTIONS, f"call of {token.text} in {canonical!r}"
            assert i == 0 or code[i - 1].type != L.DOT, f"namespaced call in {canonical!r}"


@FUZZ
@given(queries())
def test_what_the_guard_accepts_is_canonical_and_allowed(query):
    try:
        canonical = check(query)
    except CypherRefused:
        return
    again = cypher_guard._checked.__wrapped__(canonical).text  # past the cache: a real second check
    assert again == canonical, (query, canonical, again)
    assert_only_allowed(canonical)


def test_the_oracle_itself_catches_what_it_must():
    """The lexer-level oracle above is no test that cannot fail."""
    for bad in ["MATCH (n) LOAD FROM 'x' RETURN *", "RETURN string(n)", "RETURN `lower`(n)", "RETURN apoc.x(1)",
                "MATCH (n) SET n.x = 1", "RETURN 1; RETURN 2", "RETURN 1 /* c */", "CALL db.labels()"]:
        with pytest.raises(AssertionError):
            assert_only_allowed(bad)
    assert_only_allowed("MATCH (p:Person) RETURN lower(p.name) AS `load`, 'LOAD FROM x' AS s")


# --- accepted queries on a real Ladybug graph ---------------------------------------------------------

_RUNNER = r"""
import json, sys
import ladybug
db = ladybug.Database(sys.argv[1], read_only=True)
conn = ladybug.Connection(db)
conn.set_query_timeout(int(sys.argv[2]))
for line in sys.stdin:
    query = json.loads(line)
    print(json.dumps({"start": query}), flush=True)
    try:
        result = conn.execute(query)
        rows = 0
        while result.has_next() and rows < 20:
            result.get_next()
            rows += 1
        outcome = "rows" if rows else "empty"
    except Exception as exc:  # the database refused it: a clear error is fine, a crash is not
        outcome = "error: " + str(exc).splitlines()[0][:80]
    print(json.dumps({"done": outcome}), flush=True)
"""


def _accepted_sample(size: int) -> list[str]:
    accepted: dict[str, None] = {}

    @settings(FUZZ, max_examples=size * 3)
    @given(reading_queries())
    def collect(query):
        try:
            accepted.setdefault(check(query))
        except CypherRefused:
            pass

    collect()
    return list(accepted)[:size]


def _run_batch(path: Path, batch: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(path), "500"], capture_output=True, text=True,
                          input="".join(json.dumps(q) + "\n" for q in batch), timeout=600)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    if done.returncode != 0:
        started = [e["start"] for e in events if "start" in e]
        last = started[-1] if len(started) > len([e for e in events if "done" in e]) else None
        pytest.fail(f"Ladybug died (exit {done.returncode}) on an accepted query: {last!r}\n{done.stderr[-2000:]}")
    return [e["done"] for e in events if "done" in e]


def test_the_runner_reports_the_query_that_killed_ladybug(tmp_path):
    """The crash detector above is no test that cannot fail: the guard refuses this query, so it is
    handed to the runner directly."""
    import ladybug

    path = tmp_path / "empty.lbdb"
    ladybug.Database(str(path)).close()
    assert _run_batch(path, ["RETURN 1 AS one"]) == ["rows"]
    segfault = "RETURN date('0001-01-01') - interval('1 day') AS d"
    with pytest.raises(pytest.fail.Exception, match="Ladybug died"):
        _run_batch(path, ["RETURN 1 AS one", segfault])


def _fingerprint(settings_, path: Path) -> str:
    with open_store(settings_, backend="ladybug", ladybug_path=path, read_only=True) as store:
        return hashlib.sha256(json.dumps(dump(store), ensure_ascii=False).encode()).hexdigest()


@pytest.mark.slow
def test_accepted_queries_do_not_crash_or_change_a_ladybug_graph(demo):
    path = Path(demo.workspace.read_current_graph()["path"])
    before = _fingerprint(demo.settings, path)
    sample = _accepted_sample(300)
    outcomes = []
    for start in range(0, len(sample), 50):
        outcomes += _run_batch(path, sample[start:start + 50])
    assert len(outcomes) == len(sample) >= 200
    # Many fail to bind (random names, types): a clear error is fine; enough must really run.
    assert sum(o in ("rows", "empty") for o in outcomes) >= len(sample) // 5
    assert _fingerprint(demo.settings, path) == before
