"""Organisations named by the sources (MEMBER_OF targets, units on records), and their hierarchy.

Names arrive standardised: simplified, without the university's own name in front, and with the
mapping's alias table applied (former names and nicknames become the canonical name), so one
organisation is one name. The hierarchy is university -> college or office -> department: an
organisation whose name begins with another's name (计算机学院软件工程系 under 计算机学院) hangs
under it; every other one hangs under the university named in the mapping.
"""

from __future__ import annotations

import duckdb

from ingest.lakehouse import FINISHED_RUN_STATUSES, fetch_one
from ingest.standardise import standardise_org_name


def _member(name: str) -> str:
    return f"org:{name}"


def university_name(con: duckdb.DuckDBPyConnection) -> str | None:
    row = fetch_one(con, f"""SELECT university FROM ingest_run WHERE status IN {FINISHED_RUN_STATUSES}
        ORDER BY started_at DESC LIMIT 1""")
    return standardise_org_name(row[0]) if row and row[0] else None


def org_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    names = {
        standardise_org_name(v)
        for (v,) in con.execute("SELECT DISTINCT target_value FROM dwd_relation WHERE target_type = 'Organisation'"
                                ).fetchall()
    }
    university = university_name(con)
    if university:
        names.add(university)
    return sorted(n for n in names if n)


def org_members(con: duckdb.DuckDBPyConnection) -> list[list[str]]:
    return [[_member(n)] for n in org_names(con)]


def org_parents(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(child member, parent member) for every organisation but the university."""
    names = org_names(con)
    university = university_name(con)
    out = []
    for name in names:
        if name == university:
            continue
        prefixes = [p for p in names if p != name and p != university and name.startswith(p)]
        parent = max(prefixes, key=len) if prefixes else university
        if parent:
            out.append((_member(name), _member(parent)))
    return out
