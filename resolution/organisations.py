"""Organisations named by the sources (MEMBER_OF targets, units on records).

Walking-skeleton rule: one organisation per standardised name. Aliases, renamings and the
university -> college -> department hierarchy are resolved by the organisation resolver (issue 4).
"""

from __future__ import annotations

import duckdb

from ingest.standardise import standardise_org_name


def org_members(con: duckdb.DuckDBPyConnection) -> list[list[str]]:
    names = {
        standardise_org_name(v)
        for (v,) in con.execute(
            "SELECT DISTINCT target_value FROM dwd_relation WHERE target_type = 'Organisation' AND match_on = 'name'"
        ).fetchall()
    }
    return [[f"org:{n}"] for n in sorted(n for n in names if n)]
