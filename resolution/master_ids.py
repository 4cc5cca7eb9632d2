"""Stable master IDs across re-runs.

A new cluster takes the ID that most of its members had last time (the survivor of a merge keeps
its ID); an ID whose members all went to another cluster becomes an alias `merged_into` that one;
on a split the larger part keeps the ID. IDs are never reused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

import duckdb
import pyarrow as pa

from ingest.lakehouse import fetch_one

PREFIX = {"Person": "P", "Organisation": "O", "Discipline": "D", "Asset": "A", "Publication": "W", "Project": "J"}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS res_master_registry (
        master_id VARCHAR PRIMARY KEY, entity_type VARCHAR, status VARCHAR, merged_into VARCHAR,
        created_run VARCHAR, updated_run VARCHAR)""")
    con.execute("""CREATE TABLE IF NOT EXISTS res_link (
        member_id VARCHAR, entity_type VARCHAR, master_id VARCHAR, rule VARCHAR,
        PRIMARY KEY (member_id, entity_type))""")


def assign(con: duckdb.DuckDBPyConnection, entity_type: str, clusters: list[list[Hashable]],
           run_id: str) -> dict[Hashable, str]:
    """Returns member -> master ID for every member of every cluster, and updates the registry."""
    previous = dict(con.execute("SELECT member_id, master_id FROM res_link WHERE entity_type = ?",
                                [entity_type]).fetchall())
    prefix = PREFIX[entity_type]
    row = fetch_one(con, "SELECT max(CAST(substr(master_id, 2) AS BIGINT)) FROM res_master_registry "
                         "WHERE entity_type = ?", [entity_type])
    next_seq = (row[0] or 0) + 1

    # Largest clusters choose first, so that on a split the larger part keeps the ID.
    order = sorted(range(len(clusters)), key=lambda i: (-len(clusters[i]), str(min(map(str, clusters[i])))))
    claimed: dict[str, int] = {}
    chosen: dict[int, str] = {}
    for i in order:
        votes = Counter(previous[m] for m in clusters[i] if m in previous)
        for master_id, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
            if master_id not in claimed:
                claimed[master_id] = i
                chosen[i] = master_id
                break
    new_ids: list[tuple[str, str]] = []
    for i in range(len(clusters)):
        if i not in chosen:
            chosen[i] = f"{prefix}{next_seq:08d}"
            next_seq += 1
            new_ids.append((chosen[i], entity_type))

    members = {m: chosen[i] for i, cluster in enumerate(clusters) for m in cluster}
    # IDs used before and not kept: an alias of where most of their members went (or retired).
    old_ids = set(previous.values()) - set(claimed)
    went_to: dict[str, Counter] = {}
    for m, old in previous.items():
        if old in old_ids and m in members:
            went_to.setdefault(old, Counter())[members[m]] += 1
    if new_ids:
        con.register("_new_ids", pa.table({"master_id": [m for m, _ in new_ids], "entity_type": [e for _, e in new_ids]}))
        con.execute("INSERT INTO res_master_registry SELECT master_id, entity_type, 'active', NULL, ?, ? FROM _new_ids",
                    [run_id, run_id])
        con.unregister("_new_ids")
    con.execute("UPDATE res_master_registry SET status = 'active', merged_into = NULL, updated_run = ? "
                "WHERE entity_type = ? AND master_id IN (SELECT unnest(?::VARCHAR[]))",
                [run_id, entity_type, list(claimed)])
    for old in old_ids:
        target = went_to[old].most_common(1)[0][0] if old in went_to else None
        con.execute("UPDATE res_master_registry SET status = ?, merged_into = ?, updated_run = ? WHERE master_id = ?",
                    ["merged" if target else "retired", target, run_id, old])
    return members
