"""The typo levels' SQL (resolution/engines.py): DuckDB's guarded forms — a cheap test of lengths and
differing positions before Damerau-Levenshtein — say exactly what the plain definitions say, on
strings hypothesis draws (identifiers, dates, CJK and Latin text, unequal lengths), evaluated by
DuckDB itself."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from resolution.engines import DuckDBSql

# digits and a few letters and characters: collisions, swaps and near misses are common
TEXT = st.text(alphabet="0123456789XAB张伟", max_size=9)
NEAR = st.tuples(TEXT, st.integers(0, 8), st.sampled_from(["swap", "change", "drop", "add", "same", "other"]),
                 TEXT)


def _variant(base: str, at: int, how: str, other: str) -> str:
    """A string near `base` (one edit of a kind) or a random one."""
    i = at % (len(base) or 1)
    if how == "swap" and len(base) >= 2:
        i = min(i, len(base) - 2)
        return base[:i] + base[i + 1] + base[i] + base[i + 2:]
    if how == "change" and base:
        return base[:i] + ("1" if base[i] != "1" else "2") + base[i + 1:]
    if how == "drop" and base:
        return base[:i] + base[i + 1:]
    if how == "add":
        return base[:i] + "7" + base[i:]
    return base if how == "same" else other


@settings(max_examples=100, deadline=None)
@given(st.lists(NEAR, min_size=1, max_size=40))
def test_guarded_typo_levels_agree_with_the_definitions(cases):
    pairs = [(a, _variant(a, at, how, other)) for a, at, how, other in cases]
    sql = DuckDBSql()
    con = duckdb.connect()
    con.execute("CREATE TABLE p (l VARCHAR, r VARCHAR)")
    con.executemany("INSERT INTO p VALUES (?, ?)", pairs)
    rows = con.execute(f"""
        SELECT l, r, {sql.within_one_typo('l', 'r')}, damerau_levenshtein(l, r) <= 1,
               {sql.swapped('l', 'r')}, damerau_levenshtein(l, r) = 1 AND levenshtein(l, r) = 2 FROM p""").fetchall()
    for l, r, typo, typo_plain, swap, swap_plain in rows:
        assert bool(typo) == bool(typo_plain), (l, r)
        assert bool(swap) == bool(swap_plain), (l, r)
    con.close()


def test_a_swap_is_told_from_a_changed_digit():
    sql = DuckDBSql()
    con = duckdb.connect()
    got = con.execute(f"""SELECT {sql.swapped("'2024010203'", "'2024012003'")}, {sql.swapped("'2024010203'", "'2024010204'")},
                                 {sql.within_one_typo("'2024010203'", "'2024010204'")},
                                 {sql.within_one_typo("'2024010203'", "'202401020'")},
                                 {sql.within_one_typo("'2024010203'", "'2024010299'")}""").fetchone()
    assert got == (True, False, True, True, False)
