"""Hypothesis strategies for Cypher-ish queries: reading queries over the real graph schema, mixed with
what an attacker would try — comments of every style holding quotes, strings with escapes, backtick
names, functions the guard refuses, writing and admin clauses (LOAD FROM, COPY, CALL x=…,
CHECKPOINT, INSTALL, ATTACH, EXPORT), second statements. Used by tests/test_cypher_fuzz.py (the
parser and a real Ladybug graph) and by the HTTP-level fuzz.

`queries()` is the strategy to use; most of what it draws is a valid reading query, so a run
exercises the canonical re-writing as much as the refusals.
"""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from graph_api.cypher_guard import ALLOWED_FUNCTIONS
from ontology.schema import graph_schema

_SCHEMA = graph_schema()
LABELS = sorted(_SCHEMA.nodes)
REL_TYPES = sorted(_SCHEMA.rels)
PROPERTIES = sorted({c.name for t in [*_SCHEMA.nodes.values(), *_SCHEMA.rels.values()] for c in t.columns})

# Between two tokens: mostly a space, sometimes a comment holding quotes, backticks or a clause.
SEPARATORS = st.sampled_from([" "] * 40 + [
    "\n", "\t", "  ", " /* ' */ ", ' /* " */ ', " /* ` */ ", " /* MATCH (n) DETACH DELETE n */ ", "/**/",
    " // ' \n", ' // " CALL timeout=1\n', " /* \\' */ ", "\n// */ '\n",
] * 2 + [" /* */ */ ", " /* /* */ ", " -- ", " --'\n", "\u00a0", "\u3000", "\u2028"])

PERSON_IDS = ["P00000001", "P00000042", "P123456789"]
# Characters and escapes for string literals: quotes of both kinds, backslashes, unicode escapes
# (\\u0027 is an apostrophe), octal, control characters, CJK, a lone backslash at the end.
_STRING_PIECES = st.sampled_from([
    "a", "name", "张三", "漓江", "'", '"', "`", "\\'", '\\"', "\\\\", "\\u0027", "\\u0022", "\\u005c", "\\047",
    "\\n", "\\t", "\\b", "\\uD800", "\\x27", "\\q", " ", "/*", "*/", "//", "--", ";", "CREATE", "LOAD FROM",
    "id_number", "bank_account", *PERSON_IDS, "\u2028", "\x00", "\\", "\\u00e9", "\\uuu0041",
])
_NAMES = st.sampled_from([
    "p", "n", "x", "m", "r", "d", "v", "row", "`p`", "`a b`", "`a'b`", '`a"b`', "`a\\`", "`姓名`", "姓名",
    "`a\u3000b`", "a\u3000b", "`LOAD`", "load", "copy", "`CALL`", "``", "`a``b`", "_x1", "`1`",
])
_FORBIDDEN_FUNCTIONS = [
    "string", "to_string", "toString", "cast", "struct_extract", "properties", "keys", "date", "interval",
    "timestamp", "current_setting", "read_csv", "md5", "sha256", "repeat", "lpad", "list_extract", "json",
    "to_json", "map_extract", "list_to_string", "concat", "db_version", "show_tables", "nextval", "error",
    "apoc.text.join", "db.labels", "`string`", "STRUCT_EXTRACT", "Date",
]
_FUNCTIONS = st.sampled_from(sorted(ALLOWED_FUNCTIONS) * 2 + ["LOWER", "Count", "`lower`", "toLower"]
                             + _FORBIDDEN_FUNCTIONS)
_NUMBERS = st.sampled_from(["0", "1", "2", "10", "1.5", "3"] * 4 + [
    "-1", ".5", "1e3", "1.5e-3", "0x1f", "1_000", "1.5f", "007", "999999999", "9223372036854775807", "12abc"])

# Clauses that write, administer or reach outside the graph (Ladybug's and Neo4j's).
FORBIDDEN_CLAUSES = [
    "CREATE (z:Person {id: 'P99999999'})", "MERGE (z:Organisation {id: 'O1'})", "SET p.name = 'x'", "DELETE p",
    "DETACH DELETE p", "REMOVE p.name", "CALL db.labels()", "CALL show_tables() RETURN *", "CALL timeout=1",
    "CALL threads=64", "CALL current_setting('timeout') RETURN *",
    'LOAD FROM "/etc/passwd" (header=false, delim=":", file_format="csv") RETURN *',
    "LOAD FROM '/etc/passwd' RETURN *", "LOAD WITH HEADERS (a STRING) FROM '/etc/passwd' RETURN *",
    "COPY Person TO '/tmp/campus-kg-fuzz.csv'", "COPY (MATCH (q) RETURN q) TO '/tmp/campus-kg-fuzz.csv'",
    "COPY Person FROM '/tmp/campus-kg-fuzz.csv'", "CHECKPOINT", "INSTALL json", "LOAD EXTENSION json",
    "ATTACH '/tmp/campus-kg-fuzz.lbdb' AS other (dbtype lbug)", "DETACH other", "USE other",
    "EXPORT DATABASE '/tmp/campus-kg-fuzz'", "IMPORT DATABASE '/tmp/campus-kg-fuzz'", "FOREACH (i IN [1] | CREATE ())",
    "BEGIN TRANSACTION", "COMMIT", "DROP TABLE Person", "ALTER TABLE Person ADD z INT64",
    "CALL { MATCH (q) RETURN q } RETURN 1", "CREATE MACRO m(a) AS a",
]


_GAP = "\x01"  # where a separator goes; `queries` fills them in (one draw per query, not per gap)


def _joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The parts, with a separator between each two."""
    return st.tuples(*parts).map(_GAP.join)


def _fill_gaps(text: str, separators: list[str]) -> str:
    pieces = text.split(_GAP)
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:]):
        out += [separators[i % len(separators)], piece]
    return "".join(out)


def _text(value: str) -> st.SearchStrategy[str]:
    return st.just(value)


@cache
def string_literals() -> st.SearchStrategy[str]:
    quote = st.sampled_from(["'"] * 3 + ['"'])
    return st.tuples(quote, st.lists(_STRING_PIECES, max_size=5)).map(lambda t: t[0] + "".join(t[1]) + t[0])


@cache
def names() -> st.SearchStrategy[str]:
    return _NAMES


@cache
def properties() -> st.SearchStrategy[str]:
    return st.sampled_from(PROPERTIES + ["`id`", "`name`", "ID_NUMBER", "`id'number`", "value", "create", "`set`"])


@cache
def _leaf_expressions() -> st.SearchStrategy[str]:
    return st.one_of(
        string_literals(), _NUMBERS, st.sampled_from(["NULL", "true", "FALSE", "$id", "$1", "$orgs", "count(*)"]),
        names(), st.tuples(names(), properties()).map(lambda t: f"{t[0]}.{t[1]}"),
    )


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "%", "^", "=", "<>", "<", ">=", "AND", "OR", "XOR",
                              "STARTS WITH", "ENDS WITH", "CONTAINS", "IN"])
    args = st.lists(inner, max_size=3).map(", ".join)
    return st.one_of(
        _joined(inner, binary, inner),
        _joined(_FUNCTIONS, _text("("), args, _text(")")),
        _joined(_FUNCTIONS, _text("(DISTINCT"), inner, _text(")")),
        _joined(_text("("), inner, _text(")")),
        _joined(_text("["), args, _text("]")),
        _joined(_text("{"), properties(), _text(":"), inner, _text("}")),
        _joined(inner, _text("["), st.one_of(_NUMBERS, inner), _text("]")),
        _joined(inner, _text("["), _NUMBERS, _text(".."), _NUMBERS, _text("]")),
        _joined(_text("NOT"), inner),
        _joined(inner, st.sampled_from(["IS NULL", "IS NOT NULL"])),
        _joined(_text("CASE WHEN"), inner, _text("THEN"), inner, _text("ELSE"), inner, _text("END")),
        _joined(st.sampled_from(["all", "any", "none", "single"]), _text("("), names(), _text("IN"), inner,
                _text("WHERE"), inner, _text(")")),
        _joined(_text("["), names(), _text("IN"), inner, _text("|"), inner, _text("]")),
        _joined(_text("range("), _NUMBERS, _text(","), st.one_of(_NUMBERS, inner), _text(")")),
        _joined(_text("date_part('year',"), inner, _text(")")),
        _joined(_text("EXISTS {"), patterns(), _text("}")),
    )


@cache
def expressions() -> st.SearchStrategy[str]:
    """A recursive strategy: literals, names and properties combined by operators and functions."""
    return st.recursive(_leaf_expressions(), _extend, max_leaves=6)


@cache
def node_patterns() -> st.SearchStrategy[str]:
    label = st.one_of(st.just(""), st.sampled_from(LABELS).map(lambda s: f":{s}"), st.just(":`Person`"))
    props = st.one_of(st.just(""), st.sampled_from(["{id: $id}", "{id: 'P00000001'}", "{name: '张三'}",
                                                     "{id_number: $x}", "{`id`: $id}"]))
    return st.tuples(st.one_of(st.just(""), names()), label, props).map(lambda t: f"({t[0]}{t[1]} {t[2]})")


@cache
def patterns() -> st.SearchStrategy[str]:
    rel = st.tuples(st.sampled_from(["-", "<-"]), st.one_of(st.just(""), names()),
                    st.sampled_from([""] + [f":{t}" for t in REL_TYPES] + [":ADVISES|MEMBER_OF"]),
                    st.sampled_from(["", "*1..2"]), st.sampled_from(["->", "-"]))
    rel = rel.map(lambda t: f"{t[0]}[{t[1]}{t[2]}{t[3]}]{t[4]}" if (t[1] or t[2] or t[3]) else t[0] + t[4])
    chain = st.lists(st.tuples(rel, node_patterns()).map("".join), max_size=2)
    return st.tuples(node_patterns(), chain).map(lambda t: t[0] + "".join(t[1]))


@cache
def _items() -> st.SearchStrategy[str]:
    item = st.one_of(expressions(), _joined(expressions(), _text("AS"), names()))
    return st.one_of(st.just("*"), st.lists(item, min_size=1, max_size=3).map(", ".join))


@cache
def reading_clauses() -> st.SearchStrategy[str]:
    where = st.one_of(st.just(""), _joined(_text("WHERE"), expressions()))
    return st.one_of(
        _joined(st.sampled_from(["MATCH", "OPTIONAL MATCH", "match", "Optional Match"]), patterns(), where),
        _joined(_text("UNWIND"), expressions(), _text("AS"), names()),
        _joined(st.sampled_from(["WITH", "WITH DISTINCT"]), _items(), where),
    )


@cache
def forbidden_clauses() -> st.SearchStrategy[str]:
    clause = st.sampled_from(FORBIDDEN_CLAUSES)
    hidden = clause.map(lambda c: f"/* ' */ {c} // ' */")  # the comment trick that fooled the regex filter
    return st.one_of(clause, hidden)


@cache
def single_queries() -> st.SearchStrategy[str]:
    clause = st.one_of(*[reading_clauses()] * 6, forbidden_clauses())
    tail = st.tuples(
        st.sampled_from(["", "ORDER BY 1", "ORDER BY x DESC"]), st.sampled_from(["", "SKIP 1"]),
        st.sampled_from(["", "LIMIT 5", "LIMIT $n"]),
    ).map(lambda t: " ".join(p for p in t if p))
    ret = _joined(st.sampled_from(["RETURN", "RETURN DISTINCT", "return"]), _items(), tail)
    return st.tuples(st.lists(clause, max_size=3), ret).map(lambda t: " ".join([*t[0], t[1]]))


@cache
def queries() -> st.SearchStrategy[str]:
    """A whole request: one query, sometimes a UNION, a trailing `;` or a second statement."""
    union = _joined(single_queries(), st.sampled_from(["UNION", "UNION ALL"]), single_queries())
    body = st.one_of(*[single_queries()] * 4, union, forbidden_clauses())
    suffix = st.one_of(*[st.just("")] * 6, st.just(";"), st.just(" ; "),
                       _joined(_text(";"), st.one_of(single_queries(), forbidden_clauses())))
    prefix = st.sampled_from([""] * 6 + ["// saved query\n", "/* ' */ ", " ", "\ufeff"])
    separators = st.lists(SEPARATORS, min_size=1, max_size=8)
    return st.tuples(prefix, body, suffix, separators).map(lambda t: _fill_gaps("".join(t[:3]), t[3]))


@cache
def reading_queries() -> st.SearchStrategy[str]:
    """Reading queries only (no forbidden clause, no second statement), with quiet separators:
    most of them are accepted, to be run against a real graph."""
    ret = _joined(st.sampled_from(["RETURN", "RETURN DISTINCT"]), _items(),
                  st.sampled_from(["", "LIMIT 5", "ORDER BY 1 LIMIT 3", "SKIP 1 LIMIT 2"]))
    # Most start by binding the generator's usual names to a few rows, so that more of what follows binds.
    anchor = st.sampled_from([""] + [
        f"MATCH {pattern} WITH p, r, x, 1 AS n, 'P00000001' AS m, [1, 2] AS d, x AS v LIMIT 20"
        for pattern in ["(p:Person)-[r:MEMBER_OF]->(x:Organisation)", "(p:Person)<-[r:DESCRIBES]-(x:Statement)",
                        "(p:Person)-[r:AUTHOR_OF]->(x:Publication)", "(p:Person)-[r:ADVISES]->(x:Person)",
                        "(x:Asset)<-[r:CUSTODIAN_OF]-(p:Person)", "(p:Person)<-[r:RESOLVED_TO]-(x:SourceRecord)"]])
    body = st.tuples(anchor, st.lists(reading_clauses(), max_size=2), ret).map(
        lambda t: " ".join(part for part in [t[0], *t[1], t[2]] if part))
    quiet = st.lists(st.sampled_from([" "] * 8 + ["\n", " /* ' */ ", " // ' \n"]), min_size=1, max_size=4)
    return st.tuples(body, quiet).map(lambda t: _fill_gaps(t[0], t[1]))
