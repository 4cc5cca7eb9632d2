"""Survivorship (一数一源) against a plain reading of its rule, on statements hypothesis makes up.

For each master and property the value comes from the most authoritative source (its rank in the
mapping, 9 where the mapping gives none), then the most recent run, then the value most of the
master's statements agree on, then the smallest value and record ID; every property with more
than one value is a conflict listing them all. resolution/survivorship.py does this with window
functions over every statement; the oracle below reads the rule as it is written, one statement at
a time, so that a faster query can be checked against it.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from resolution import survivorship
from tests.budget import examples

MASTERS = ("m1", "m2", "m3")
SOURCES = ("hr", "card", "library")
RUNS = ("run-20260101T000000000000-aaaa", "run-20260201T000000000000-bbbb", "run-20260301T000000000000-cccc")
PROPERTIES = ("name", "phone")
VALUES = ("甲", "乙", "丙", None)

records = st.lists(st.tuples(st.sampled_from(MASTERS), st.sampled_from(SOURCES), st.sampled_from(RUNS)),
                   min_size=1, max_size=8)
statements = st.lists(st.tuples(st.integers(0, 7), st.sampled_from(PROPERTIES), st.sampled_from(VALUES)),
                      max_size=24)
authority = st.dictionaries(st.tuples(st.sampled_from(SOURCES), st.sampled_from(PROPERTIES)), st.integers(1, 3))


def _lakehouse(recs, stmts, ranks) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE dwd_record (record_id VARCHAR, source VARCHAR, entity_type VARCHAR, run_id VARCHAR)")
    con.execute("CREATE TABLE dwd_statement (record_id VARCHAR, property VARCHAR, value VARCHAR)")
    con.execute("CREATE TABLE res_link (member_id VARCHAR, master_id VARCHAR, entity_type VARCHAR)")
    con.execute("CREATE TABLE source_authority (source VARCHAR, property VARCHAR, rank INTEGER)")
    for i, (master, source, run) in enumerate(recs):
        con.execute("INSERT INTO dwd_record VALUES (?, ?, 'Person', ?)", [f"r{i}", source, run])
        con.execute("INSERT INTO res_link VALUES (?, ?, 'Person')", [f"r{i}", master])
    for i, prop, value in stmts:
        if i < len(recs):
            con.execute("INSERT INTO dwd_statement VALUES (?, ?, ?)", [f"r{i}", prop, value])
    for (source, prop), rank in ranks.items():
        con.execute("INSERT INTO source_authority VALUES (?, ?, ?)", [source, prop, rank])
    survivorship.ensure_tables(con)
    return con


def _oracle(recs, stmts, ranks):
    rows = [(recs[i][0], prop, value, f"r{i}", recs[i][2], ranks.get((recs[i][1], prop), 9))
            for i, prop, value in stmts if i < len(recs) and value is not None]
    support = Counter((m, p, v) for m, p, v, *_ in rows)
    chosen, values = {}, defaultdict(set)
    for m, p, v, record, run, rank in rows:
        values[m, p].add(v)
        newest_first = -RUNS.index(run)
        key = (rank, newest_first, -support[m, p, v], v, record)
        if (m, p) not in chosen or key < chosen[m, p][0]:
            chosen[m, p] = (key, (m, "Person", p, v, record, rank, support[m, p, v], survivorship.RULE))
    conflicts = {(m, "Person", p, len(vs), tuple(sorted(vs))) for (m, p), vs in values.items() if len(vs) > 1}
    return {row for _, row in chosen.values()}, conflicts


@settings(max_examples=examples(100), deadline=None)
@given(records, statements, authority)
def test_survivorship_follows_its_rule(recs, stmts, ranks):
    con = _lakehouse(recs, stmts, ranks)
    survivorship.survive(con)
    attributes = set(con.execute("SELECT * FROM res_attribute").fetchall())
    conflicts = {(m, e, p, n, tuple(vs)) for m, e, p, n, vs in con.execute("SELECT * FROM res_conflict").fetchall()}
    assert (attributes, conflicts) == _oracle(recs, stmts, ranks)
