"""Deterministic linkage on strong identifiers (validated ID number, staff number, student number).

Identifiers are typed (a staff number never matches a student number), ID numbers are used only
when their check character is valid (ingest leaves invalid ones out of the wide table), and the
union-find refuses any merge that would join two different valid ID numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from resolution.clusters import ConstrainedUnionFind

# Strongest first: the rule recorded on a record's link is the first identifier that linked it.
STRONG_IDENTIFIERS = ("id_number", "staff_no", "student_no", "email")  # e-mail: the institution's own
# Master classes whose records with the same natural key describe the same entity.
NATURAL_KEYS = {"Asset": "asset_no"}


@dataclass
class Clustering:
    clusters: list[list[str]]
    rule: dict[str, str]
    refused: list[tuple[str, str, str]]


def identifier_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    cols = ", ".join(STRONG_IDENTIFIERS)
    return con.execute(f"SELECT record_id, {cols} FROM dwd_person_record ORDER BY record_id").fetchall()


def add_records(uf: ConstrainedUnionFind, rows: list[tuple]) -> None:
    """Every Person record, with its valid ID number as the value no cluster may hold two of."""
    for rid, id_number, *_ in rows:
        uf.add(rid, id_number)


def link_identifiers(uf: ConstrainedUnionFind, rows: list[tuple], rule: dict[str, str]) -> None:
    """Joins records sharing a strong identifier, strongest identifier first."""
    for position, kind in enumerate(STRONG_IDENTIFIERS, start=1):
        first: dict[str, str] = {}
        for row in rows:
            rid, value = row[0], row[position]
            if not value:
                continue
            if value in first:
                if uf.union(first[value], rid, f"exact:{kind}"):
                    rule.setdefault(rid, f"exact:{kind}")
                    rule.setdefault(first[value], f"exact:{kind}")
            else:
                first[value] = rid


def finish(uf: ConstrainedUnionFind, rule: dict[str, str]) -> Clustering:
    clusters = [sorted(members) for members in uf.groups().values()]
    for cluster in clusters:
        if len(cluster) == 1:
            rule[cluster[0]] = "singleton"
    return Clustering(clusters, rule, [(str(a), str(b), r) for a, b, r in uf.refused])


def keyed_clusters(con: duckdb.DuckDBPyConnection, entity_type: str, table: str) -> Clustering:
    key = NATURAL_KEYS.get(entity_type)
    if key is None:
        ids = [r[0] for r in con.execute(f"SELECT record_id FROM {table} ORDER BY record_id").fetchall()]
        return Clustering([[i] for i in ids], {i: "singleton" for i in ids}, [])
    groups: dict[str, list[str]] = {}
    for rid, value in con.execute(f"SELECT record_id, {key} FROM {table} ORDER BY record_id").fetchall():
        groups.setdefault(value or rid, []).append(rid)
    clusters = list(groups.values())
    rule = {rid: (f"exact:{key}" if len(c) > 1 else "singleton") for c in clusters for rid in c}
    return Clustering(clusters, rule, [])
