"""The analysts' Cypher guard parses (ANTLR openCypher) and allows by allowlist: every known attack is
refused, every write of the API's corpus too, every saved query is accepted, and what runs — the
canonical text `check` returns — gives the rows the saved text gives on the demo graph."""

from __future__ import annotations

import re
from pathlib import Path

import ladybug
import pytest

from graph_api.cypher_guard import CypherRefused, check, inspect, persons_named
from graph_api.store import open_store
from queries import load_query, names, needs_entity
from tests.test_api_cypher import WRITES

# (query, a word the refusal must name): the issue's attacks, and their relatives.
ATTACKS = [
    # the comment trick that fooled the regex filter: an apostrophe in a comment hid the rest
    ("""/* ' */ LOAD FROM "/etc/passwd" (header=false, delim=":", file_format="csv") RETURN * // ' */ MATCH""",
     "syntax error"),
    ("""MATCH (n) /* ' */ COPY (MATCH (p:Person) RETURN p) TO '/tmp/x.csv' // ' */ RETURN n""", "syntax error"),
    ("/* ' */ COPY Person TO '/tmp/x.csv' // ' */ MATCH (n) RETURN n", "syntax error"),
    ("/* ' */ CALL timeout=1 // ' */ MATCH (n) RETURN n", "syntax error"),
    ("CALL timeout=1", "syntax error"),
    ("/* ' */ INSTALL json // ' */ MATCH (n) RETURN n", "syntax error"),
    ("/* ' */ CHECKPOINT // ' */ MATCH (n) RETURN n", "syntax error"),
    ("LOAD FROM '/etc/passwd' RETURN *", "syntax error"),
    ("MATCH (n) LOAD FROM '/etc/passwd' RETURN *", "syntax error"),
    ("ATTACH '/tmp/x.lbdb' AS other (dbtype lbug)", "syntax error"),
    ("EXPORT DATABASE '/tmp/stolen'", "syntax error"),
    ("USE other MATCH (n) RETURN n", "syntax error"),
    ("CALL show_tables() RETURN *", "CALL"),
    ("MATCH (n) CALL db.labels() YIELD label RETURN label", "CALL"),
    # values out of nodes, and properties by computed key
    ("MATCH (p:Person) RETURN string(p) AS s", "string()"),
    ("MATCH (p:Person) RETURN STRING(p) AS s", "STRING()"),
    ("MATCH (p:Person) RETURN `string`(p) AS s", "string()"),
    ("MATCH (p:Person) RETURN to_string(p) AS s", "to_string()"),
    ("MATCH (p:Person) RETURN toString(p) AS s", "toString()"),
    ("MATCH (p:Person) RETURN struct_extract(p, 'id_'+'number') AS s", "struct_extract()"),
    ("MATCH (p:Person) RETURN properties(p) AS s", "properties()"),
    ("MATCH (p:Person) RETURN keys(p) AS s", "keys()"),
    ("MATCH (p:Person) RETURN md5(p.name) AS s", "md5()"),
    ("MATCH (p:Person) RETURN apoc.convert.toJson(p) AS s", "apoc.convert.toJson()"),
    ("MATCH (p:Person) RETURN p['id_' + 'number'] AS s", "computed key"),
    ("MATCH (p:Person) RETURN p[$k] AS s", "computed key"),
    ("MATCH (p:Person) UNWIND ['name'] AS k RETURN p[k] AS s", "computed key"),
    ("RETURN current_setting('timeout') AS s", "current_setting()"),
    ("RETURN read_csv('/etc/passwd') AS s", "read_csv()"),
    ("RETURN repeat('x', 999999999) AS s", "repeat()"),
    # the date arithmetic that kills the process running Ladybug (SIGSEGV)
    ("RETURN date('0001-01-01') - interval('1 day')", "date()"),
    ("MATCH ()-[r:ADVISES]->() RETURN r.start_date - 999999999 AS d", "date arithmetic"),
    ("MATCH ()-[r:ADVISES]->() RETURN r.START_DATE + 1 AS d", "date arithmetic"),
    ("MATCH ()-[r:ADVISES]->() WITH r.start_date AS d RETURN d - 1 AS e", "date arithmetic"),
    ("MATCH ()-[r:ADVISES]->() WITH min(r.start_date) AS d RETURN d - 1 AS e", "date arithmetic"),
    ("MATCH ()-[r:ADVISES]->() WITH collect(r.end_date) AS ds UNWIND ds AS d RETURN 1 + d AS e", "date arithmetic"),
    ("MATCH (s:Statement) RETURN [x IN collect(s.last_seen) | x - 1] AS e", "date arithmetic"),
    ("UNWIND range(1, 100000000) AS i RETURN i", "range()"),
    ("UNWIND range(1, $n) AS i RETURN i", "range()"),
    # more than one statement
    ("MATCH (p:Person) RETURN p.name AS n; MATCH (q) RETURN q", "one statement"),
    ("MATCH (p:Person) RETURN p.name AS n;;", "one statement"),
    ("MATCH (p:Person) RETURN p.name AS n; // hidden\nCHECKPOINT", "one statement"),
    # escapes, unicode, backticks, comments, NUL
    (r"RETURN 'a\u0027 LOAD FROM x' AS s; LOAD FROM 'x' RETURN *", "one statement"),
    (r"RETURN 'a\n' AS s", "control characters"),
    (r"RETURN 'a\u0000' AS s", "control characters"),
    (r"RETURN '\uD800' AS s", "control characters"),
    (r"RETURN 'a\q' AS s", "syntax error"),
    ("RETURN 'a\nb' AS s", "syntax error"),
    ("RETURN `a``b` AS s", "syntax error"),
    ("RETURN 1 AS ``", "empty"),
    ("RETURN 1 AS `a\nb`", "control characters"),
    ("MATCH (n) RETURN n /* /* nested */ */", "syntax error"),
    ("MATCH (n) RETURN n -- not a comment in openCypher", "syntax error"),
    ("MATCH (n) RETURN n\x00", "NUL"),
    ("MATCH (n) RETURN n // \x00 in a comment", "NUL"),
    ("RETURN $`a b` AS x", "parameter"),
    ("RETURN 1.5f AS x", "number"),
    ("RETURN 0x1f AS x", "number"),
    ("RETURN 1_000 AS x", "number"),
    ("RETURN " + "(" * 30 + "1" + ")" * 30 + " AS x", "nested too deeply"),
    ("RETURN " + "x" * 30_000, "characters"),
]


@pytest.mark.parametrize(("query", "named"), ATTACKS)
def test_attacks_are_refused_with_a_message_naming_why(query, named):
    with pytest.raises(CypherRefused) as refused:
        check(query)
    assert named.lower() in str(refused.value).lower(), str(refused.value)


@pytest.mark.parametrize("query", WRITES)
def test_the_write_corpus_is_refused(query):
    with pytest.raises(CypherRefused):
        check(query)


def _saved_texts() -> list[tuple[str, str]]:
    return [(n, load_query(n, "Person" if needs_entity(n) else None)) for n in names()]


@pytest.mark.parametrize(("name", "text"), _saved_texts())
def test_every_saved_query_is_accepted_and_its_canonical_text_is_a_fixed_point(name, text):
    canonical = check(text)
    assert "//" not in canonical and "\n" not in canonical  # the leading comment is gone
    assert check(canonical) == canonical


def test_the_saved_queries_of_the_issue_are_accepted():
    assert "UNION ALL" in check(load_query("person_advising"))  # the old filter always refused it
    assert check(load_query("entity_history")).count("MATCH") == 3


# (query, its canonical text)
CANONICAL = [
    ("match (p:Person) // who\nwhere p.id = $id return p.name as name",
     "MATCH (p:Person) WHERE p.id = $id RETURN p.name AS name"),
    ("/* ' */ MATCH (p:Person) RETURN p.name AS n /* ' */", "MATCH (p:Person) RETURN p.name AS n"),
    ('RETURN "a\\"b" AS s', "RETURN 'a\"b' AS s"),
    (r"RETURN 'it\'s' AS s", r"RETURN 'it\'s' AS s"),
    (r"RETURN 'a\u0027) RETURN 1 //' AS s", r"RETURN 'a\') RETURN 1 //' AS s"),
    (r"RETURN '\\' AS s", r"RETURN '\\' AS s"),
    (r"RETURN '\\u0027' AS s", r"RETURN '\\u0027' AS s"),
    (r"RETURN '\101\uuu0042' AS s", "RETURN 'AB' AS s"),
    (r"RETURN '\u4e2d文' AS s", "RETURN '中文' AS s"),
    ("RETURN 1 AS `a'b`, 2 AS `it's \"x\"`", "RETURN 1 AS `a'b`, 2 AS `it's \"x\"`"),
    ("RETURN 1 AS 姓名", "RETURN 1 AS `姓名`"),
    ("RETURN 1 AS a\u3000b", "RETURN 1 AS `a\u3000b`"),  # U+3000 separates words for Ladybug
    ("MATCH (load:Person) RETURN load.name AS copy", "MATCH (`load`:Person) RETURN `load`.name AS `copy`"),
    ("RETURN LOWER('A') AS a, `toUpper`('b') AS b, Count(*) AS c",
     "RETURN lower('A') AS a, toupper('b') AS b, COUNT(*) AS c"),
    ("MATCH (a:Person)-[:ADVISES*1..2]-(b) RETURN count(DISTINCT b) AS n ;",
     "MATCH (a:Person)-[:ADVISES*1..2]-(b) RETURN count(DISTINCT b) AS n"),
    ("RETURN 1 AS x UNION ALL RETURN 2 AS x", "RETURN 1 AS x UNION ALL RETURN 2 AS x"),
    ("RETURN 1 - -1 AS x, 1 - - 1 AS y", "RETURN 1 - -1 AS x, 1 - - 1 AS y"),
    ("UNWIND [1, 2, 3][0..2] AS i RETURN i", "UNWIND [1, 2, 3][0..2] AS i RETURN i"),
    ("RETURN 1 AS `x`UNION ALL RETURN 2 AS `x`", "RETURN 1 AS x UNION ALL RETURN 2 AS x"),  # no `xUNION`
    ("RETURN $load AS x, $1 AS y", "RETURN $load AS x, $1 AS y"),  # parameters stay bare: Ladybug reads $`a` as "`a`"
]


@pytest.mark.parametrize(("query", "canonical"), CANONICAL)
def test_what_runs_is_the_canonical_text(query, canonical):
    assert check(query) == canonical
    assert check(canonical) == canonical


@pytest.mark.parametrize("literal", [r"'it\'s'", r"'\\'", r"'\\\''", r"'a\u0027b'", r"'\\u0027'", r'"a\"b\\"',
                                     r"'\101'", "'中文 \u2028 😀'", r"'/* \' */ //'", r"'\"'"])
def test_a_string_literal_means_to_ladybug_what_it_meant_to_the_guard(literal):
    """The guard decodes a literal as the grammar defines it and re-encodes it; Ladybug decodes the
    re-encoded literal to the same value."""
    checked = inspect(f"RETURN {literal} AS s")
    db = ladybug.Database()  # in memory
    result = ladybug.Connection(db).execute(checked.text)
    assert result.get_next()[0] == checked.strings[0]
    db.close()


def test_person_ids_named_in_string_literals_are_reported():
    query = "MATCH (p:Person) WHERE p.id IN ['P00000001', \"P000000420\"] OR p.name = 'P123' RETURN p.id AS id"
    assert persons_named(query) == {"P00000001", "P000000420"}
    assert inspect("MATCH (p:Person) WHERE p.id = $id RETURN p").persons == frozenset()
    assert inspect(r"RETURN '\u0050\u0030\u0030\u0030\u0030\u0030\u0030\u0030\u0031' AS p").persons == {"P00000001"}


@pytest.mark.parametrize("query", [
    "MATCH (p:Person) RETURN p.id_number AS x",
    "MATCH (p:Person) RETURN p.ID_NUMBER AS x",
    "MATCH (p:Person) RETURN p.`id_number` AS x",
    "MATCH (p:Person {phone: $x}) RETURN p.name AS x",
    "MATCH (s:Statement) WHERE s.stated_property = 'bank_account' RETURN s.id AS v",
    "MATCH (s:Statement) RETURN s.written_value AS v",
])
def test_roles_that_may_not_see_sensitive_values_cannot_name_them(query):
    with pytest.raises(CypherRefused):
        check(query, False)
    assert check(query, True)  # the structural allowlist alone accepts them


def test_the_structural_check_is_the_default():
    assert check("MATCH (s:Statement) RETURN s.value AS v") == check("MATCH (s:Statement) RETURN s.value AS v", True)


# Accepted queries run on the demo graph beside the saved ones (their rows must not change either).
EXAMPLES = [
    ("// organisations\nMATCH (o:Organisation) RETURN o.id AS id, o.name AS name ORDER BY id LIMIT 5", {}),
    ("match (p:Person) where p.name starts with \"张\" return count(*) as n", {}),
    ("MATCH (p:Person)-[:MEMBER_OF]->(o:Organisation) WITH o, count(p) AS n WHERE n > 1 "
     "RETURN o.name AS org, n ORDER BY n DESC, org LIMIT 3", {}),
    ("MATCH (x:Person)-[r:ADVISES]->(y:Person) RETURN date_part('year', r.start_date) AS y, count(*) AS n "
     "ORDER BY y LIMIT 5", {}),
    ("UNWIND range(1, 5) AS i RETURN i * 2 AS j, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END AS k", {}),
    ("RETURN 'it\\'s' AS a, \"a\\\\b\" AS b, 1 AS `a'b`", {}),
    ("MATCH (p:Person) WHERE p.id IN $ids RETURN p.id AS id /* ' */ ORDER BY id", None),
    ("MATCH (o:Organisation) RETURN o.id AS id UNION MATCH (o:Organisation) RETURN o.id AS id", {}),
]


def _parameters(store, persons: list[str]) -> dict[str, dict]:
    """Values that make each saved query find rows in the demo graph."""
    def first(cypher: str) -> str | None:
        rows = store.query(cypher)
        return rows[0]["id"] if rows else None

    advised = first("MATCH (x:Person)-[:ADVISES]->(p:Person) RETURN p.id AS id ORDER BY id LIMIT 1")
    author = first("MATCH (p:Person)-[:AUTHOR_OF]->() RETURN p.id AS id ORDER BY id LIMIT 1")
    leader = first("MATCH (p:Person)-[:LEADS]->() RETURN p.id AS id ORDER BY id LIMIT 1")
    former = first("MATCH (f:FormerId)-[:MERGED_INTO]->() RETURN f.id AS id ORDER BY id LIMIT 1")
    record = first("MATCH (r:SourceRecord)-[:RESOLVED_TO]->() RETURN r.id AS id ORDER BY id LIMIT 1")
    orgs = [r["id"] for r in store.query("MATCH (o:Organisation) RETURN o.id AS id ORDER BY id")]
    person = advised or persons[0]
    return {
        "person_outputs": {"id": author or person}, "person_projects": {"id": leader or person},
        "former_id": {"id": former}, "entity_history": {"id": former}, "record_values": {"id": record},
        "research_outputs_by_org": {"orgs": orgs}, "research_projects_by_org": {"orgs": orgs},
        "attribute_lineage": {"entity_id": person, "property": "name"}, "*": {"id": person, "ids": persons},
    }


def test_saved_queries_and_examples_give_the_same_rows_checked_as_written(demo):
    pointer = demo.workspace.read_current_graph()
    with open_store(demo.settings, backend="ladybug", ladybug_path=Path(pointer["path"]), read_only=True) as store:
        persons = [r["id"] for r in store.query("MATCH (p:Person) RETURN p.id AS id ORDER BY id LIMIT 3")]
        values = _parameters(store, persons)
        cases = [(name, text, values.get(name, values["*"])) for name, text in _saved_texts()]
        cases += [(f"example {i}", q, p if p is not None else values["*"]) for i, (q, p) in enumerate(EXAMPLES)]
        found = 0
        for name, text, params in cases:
            params = {k: v for k, v in params.items() if re.search(rf"\${k}\b", text)}
            written = store.query(text, params)
            checked = store.query(check(text), params)
            assert sorted(map(repr, checked)) == sorted(map(repr, written)), name
            found += bool(written)
    assert found >= len(cases) - 2, "most saved queries and examples find rows in the demo graph"
