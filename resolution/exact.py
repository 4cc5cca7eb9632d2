"""Deterministic linkage on strong identifiers (validated ID number, staff number, student number).

Identifiers are typed (a staff number never matches a student number), ID numbers are used only
when their check character is valid (ingest leaves invalid ones out of the wide table), and the
union-find refuses any merge that would join two different valid ID numbers.

ID numbers are compared on their legacy 15-digit projection (ingest/idcard.py: projection_15): a
number upgraded from 15 digits only guessed its century (19xx). Only a number that arrived with 18
digits can veto a merge; an upgraded one whose year and month of birth (the century aside)
contradict the record's own birth date is weak evidence: it links nothing by itself and is left to
the probabilistic model.

Passport numbers (留学生, 外籍教师) link like ID numbers. Two different passports veto a merge only
when both look valid, were issued by the same recorded country and differ by more than one typo
(resolution/clusters.py): a person may hold passports of two countries, and a number that does not
look like one may be a typo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import duckdb

from ingest.standardise import PASSPORT_PATTERN
from resolution.clusters import ConstrainedUnionFind

# Strongest first: the rule recorded on a record's link is the first identifier that linked it.
STRONG_IDENTIFIERS = ("id_number", "passport_no", "staff_no", "student_no", "email")  # e-mail: the institution's own
# Master classes whose records with the same natural key describe the same entity.
NATURAL_KEYS = {"Asset": "asset_no"}


@dataclass
class Clustering:
    clusters: list[list[str]]
    rule: dict[str, str]
    refused: list[tuple[str, str, str]]


def id_projection_sql(column: str) -> str:
    """SQL for ingest.idcard.projection_15 of a standardised (18-character) ID number column."""
    return f"(substr({column}, 1, 6) || substr({column}, 9, 9))"


# Records whose ID number ingest upgraded from the legacy 15 digits (the century is a guess).
UPGRADED_IDS_SQL = """SELECT DISTINCT record_id FROM dwd_statement
    WHERE property = 'id_number' AND flag = 'upgraded from 15 digits'"""


class IdentifierRow(NamedTuple):
    record_id: str
    id_number: str | None  # the 15-digit projection, None when it is only weak evidence
    passport_no: str | None
    staff_no: str | None
    student_no: str | None
    email: str | None
    veto_id: str | None  # the projection of an ID number that arrived with 18 digits: never two per cluster
    passport_country: str | None  # the issuing country of a valid-looking passport: one per country per cluster


def identifier_rows(con: duckdb.DuckDBPyConnection) -> list[IdentifierRow]:
    projection = id_projection_sql("p.id_number")
    rows = con.execute(f"""
        WITH upgraded AS ({UPGRADED_IDS_SQL})
        SELECT p.record_id,
               CASE WHEN u.record_id IS NOT NULL AND p.birth_date IS NOT NULL  -- the century aside
                         AND substr(p.id_number, 9, 4) <> strftime(p.birth_date, '%y%m') THEN NULL
                    ELSE {projection} END,
               p.passport_no, p.staff_no, p.student_no, p.email,
               CASE WHEN u.record_id IS NULL THEN {projection} END,
               CASE WHEN length(p.passport_no) BETWEEN 6 AND 9
                         AND regexp_full_match(p.passport_no, '{PASSPORT_PATTERN}') THEN p.nationality END
        FROM dwd_person_record p LEFT JOIN upgraded u USING (record_id)
        ORDER BY p.record_id""").fetchall()
    return [IdentifierRow(*r) for r in rows]


def add_records(uf: ConstrainedUnionFind, rows: list[IdentifierRow]) -> None:
    """Every Person record, with its original 18-digit ID number (projected) as the value no
    cluster may hold two of. An upgraded legacy number vetoes nothing: its century was a guess."""
    for row in rows:
        passports = {f"passport:{row.passport_country}": row.passport_no} if row.passport_country else {}
        uf.add(row.record_id, row.veto_id, **passports)


def link_identifiers(uf: ConstrainedUnionFind, rows: list[IdentifierRow], rule: dict[str, str]) -> None:
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
