"""Deterministic linkage on strong identifiers (validated ID number, staff number, student number).

Identifiers are typed (a staff number never matches a student number), ID numbers are used only
when their check character is valid (ingest leaves invalid ones out of the wide table), and the
union-find refuses any merge that would join two different valid ID numbers.

ID numbers are compared on their legacy 15-digit projection (ingest/idcard.py: projection_15): a
number upgraded from 15 digits only guessed its century (19xx). Only a number that arrived with 18
digits can veto a merge; an upgraded one whose year and month of birth (the century aside)
contradict the record's own birth date is weak evidence: it links nothing by itself and is left to
the probabilistic model.

Staff numbers, student numbers and e-mail addresses are typed by hand, with no check character: a
slipped or swapped digit names another person (a card office's `CW100297` for `CW100279`). Two
records sharing one are linked by rule only when their names are compatible (`names_compatible_sql`:
the same name, a shared name key — `张伟` and `ZHANG Wei` are both `zhang|wei` —, surname and given
name each within a typo, the same given name in Latin letters after a change of surname, or a record
without a name). A pair whose names disagree is held back (`Clustering.held_back`): the probabilistic
model scores it (resolution/held_back.py) seeing both the shared identifier and the disagreeing
names, and a steward reviews it when the model is unsure. ID numbers (validated check character)
and passports link without a name check.

Passport numbers (留学生, 外籍教师) link like ID numbers. Two different passports veto a merge only
when both look valid, were issued by the same recorded country and differ by more than one typo
(resolution/clusters.py): a person may hold passports of two countries, and a number that does not
look like one may be a typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import duckdb

from ingest.standardise import PASSPORT_PATTERN
from resolution.clusters import ConstrainedUnionFind

# Strongest first: the rule recorded on a record's link is the first identifier that linked it.
STRONG_IDENTIFIERS = ("id_number", "passport_no", "staff_no", "student_no", "email")  # e-mail: the institution's own
# Typed by hand without a check character: they link by rule only between records whose names agree.
NAME_CHECKED_IDENTIFIERS = ("staff_no", "student_no", "email")
# Surname and given name each at least this similar (Jaro-Winkler, either order): one typo in a name.
# Compared part by part, not on the whole key: `zhang|wei` and `zhang|wen` are two people, and a
# shared surname would lift the whole key's similarity above any useful threshold.
NAME_PART_SIMILARITY = 0.92
# Master classes whose records with the same natural key describe the same entity.
NATURAL_KEYS = {"Asset": "asset_no"}


@dataclass
class Clustering:
    clusters: list[list[str]]
    rule: dict[str, str]
    refused: list[tuple[str, str, str]]
    # pairs sharing a hand-typed identifier whose names disagree, left to the model: (a, b, why)
    held_back: list[tuple[str, str, str]] = field(default_factory=list)


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
    # Hand-typed identifiers of this record held by records whose names differ (rare): per kind, the
    # record it links to, the first other holder whose name is compatible (None: none is). Every
    # other identifier links to the first record holding it, without a name check.
    # [kind, partner] pairs; None for almost every record (straight from SQL: no per-row Python work)
    checked_partners: list[list[str | None]] | None = None
    # [kind, other record] for each later record sharing a hand-typed identifier whose name disagrees
    name_conflicts: list[list[str]] | None = None


# Per record: its name, its first name key (or the name itself, lower-cased without spaces, when it
# has no key: `Sukarno`, as PERSON_INPUT_SQL does), all its keys, and whether it is in characters.
FIRST_KEY_SQL = "COALESCE(NULLIF(split_part(name_keys, ';', 1), ''), NULLIF(lower(replace(name, ' ', '')), ''))"
NAMED_RECORDS_SQL = r"""SELECT record_id, name, FIRST_KEY AS first_key,
       list_filter(string_split(COALESCE(name_keys, ''), ';'), lambda k: k <> '') AS keys,
       COALESCE(regexp_matches(name, '\p{Han}'), false) AS han
FROM dwd_person_record""".replace("FIRST_KEY", FIRST_KEY_SQL)


def names_compatible_sql(a: str, b: str) -> str:
    """SQL: are the names of `a` and `b` (aliases of NAMED_RECORDS_SQL rows) those of one person?
    Yes when either has none; the same name; a shared name key (homophones, traditional characters,
    a romanised form in either order); surname and given name each within a typo (either order); or
    the same given name with another surname, both in Latin letters (a married name: a name written
    in characters does not change on marriage, and 伟 alone is shared by too many people)."""
    def part(alias: str, n: int) -> str:
        return f"split_part({alias}.first_key, '|', {n})"

    def similar(x: str, y: str) -> str:
        return f"jaro_winkler_similarity({x}, {y}) >= {NAME_PART_SIMILARITY}"

    sa, ga, sb, gb = part(a, 1), part(a, 2), part(b, 1), part(b, 2)
    return f"""COALESCE({a}.first_key IS NULL OR {b}.first_key IS NULL
        OR {a}.name = {b}.name OR replace({a}.first_key, '|', '') = replace({b}.first_key, '|', '')
        OR list_has_any({a}.keys, {b}.keys)
        OR ({similar(sa, sb)} AND {similar(ga, gb)})
        OR ({similar(sa, gb)} AND {similar(ga, sb)})
        OR (NOT {a}.han AND NOT {b}.han AND {ga} <> '' AND {ga} = {gb} AND {sa} <> '' AND {sb} <> ''), false)"""


def _name_checks_sql() -> str:
    """CTEs ending in `name_checks`: per record holding a hand-typed identifier that records of
    different names hold too, the partner it links to per kind and the later records whose names
    disagree. Names are compared only there, pair by pair (a handful of records per value):
    everywhere else a value's records carry one first name key (or none), and agree."""
    held = " UNION ALL ".join(f"SELECT '{k}' AS kind, {k} AS value, record_id, {FIRST_KEY_SQL} AS first_key "
                              f"FROM dwd_person_record WHERE {k} IS NOT NULL" for k in NAME_CHECKED_IDENTIFIERS)
    return f"""
        held AS ({held}),
        mixed_values AS (SELECT kind, value FROM held GROUP BY kind, value HAVING min(first_key) <> max(first_key)),
        mixed AS (SELECT kind, value, record_id FROM held JOIN mixed_values USING (kind, value)),
        named AS ({NAMED_RECORDS_SQL}),
        compared AS (
            SELECT x.kind, x.record_id AS a, y.record_id AS b, {names_compatible_sql('na', 'nb')} AS compatible
            FROM mixed x JOIN mixed y ON x.kind = y.kind AND x.value = y.value AND x.record_id <> y.record_id
            JOIN named na ON na.record_id = x.record_id JOIN named nb ON nb.record_id = y.record_id),
        checked AS (
            SELECT kind, a AS record_id, min(b) FILTER (WHERE compatible) AS partner,
                   list([kind, b] ORDER BY b) FILTER (WHERE NOT compatible AND a < b) AS conflicts
            FROM compared GROUP BY kind, a),
        name_checks AS (
            SELECT record_id, list([kind, partner] ORDER BY kind) AS partners,
                   flatten(list(conflicts ORDER BY kind) FILTER (WHERE conflicts IS NOT NULL)) AS conflicts
            FROM checked GROUP BY record_id)"""


def identifier_rows(con: duckdb.DuckDBPyConnection) -> list[IdentifierRow]:
    projection = id_projection_sql("p.id_number")
    rows = con.execute(f"""
        WITH upgraded AS ({UPGRADED_IDS_SQL}), {_name_checks_sql()}
        SELECT p.record_id,
               CASE WHEN u.record_id IS NOT NULL AND p.birth_date IS NOT NULL  -- the century aside
                         AND substr(p.id_number, 9, 4) <> strftime(p.birth_date, '%y%m') THEN NULL
                    ELSE {projection} END,
               p.passport_no, p.staff_no, p.student_no, p.email,
               CASE WHEN u.record_id IS NULL THEN {projection} END,
               CASE WHEN length(p.passport_no) BETWEEN 6 AND 9
                         AND regexp_full_match(p.passport_no, '{PASSPORT_PATTERN}') THEN p.nationality END,
               c.partners, c.conflicts
        FROM dwd_person_record p LEFT JOIN upgraded u USING (record_id) LEFT JOIN name_checks c USING (record_id)
        ORDER BY p.record_id""").fetchall()
    return [IdentifierRow(*r) for r in rows]


def add_records(uf: ConstrainedUnionFind, rows: list[IdentifierRow]) -> None:
    """Every Person record, with its original 18-digit ID number (projected) as the value no
    cluster may hold two of. An upgraded legacy number vetoes nothing: its century was a guess."""
    for row in rows:
        passports = {f"passport:{row.passport_country}": row.passport_no} if row.passport_country else {}
        uf.add(row.record_id, row.veto_id, **passports)


def link_identifiers(uf: ConstrainedUnionFind, rows: list[IdentifierRow], rule: dict[str, str]) -> None:
    """Joins records sharing a strong identifier, strongest identifier first: each record to the
    first record holding the value. Where records of different names share a hand-typed one, a
    record joins only its name-compatible partner, and the pairs whose names disagree are held back
    in the union-find (for the model, and a steward when the model is unsure)."""
    checked = {row.record_id: dict(row.checked_partners) for row in rows if row.checked_partners}
    for kind in STRONG_IDENTIFIERS:
        position, reason = IdentifierRow._fields.index(kind), f"exact:{kind}"
        first: dict[str, str] = {}
        for row in rows:
            rid, value = row[0], row[position]
            if not value:
                continue
            if rid in checked and kind in checked[rid]:
                other = checked[rid][kind]  # names differ among the holders: the compatible partner or none
            elif value in first:
                other = first[value]
            else:
                first[value] = rid
                continue
            if other and uf.union(other, rid, reason):
                rule.setdefault(rid, reason)
                rule.setdefault(other, reason)
    for row in filter(lambda r: r.name_conflicts, rows):
        for kind, other in row.name_conflicts:  # type: ignore[union-attr]
            uf.hold_back(row.record_id, other, f"{kind} shared, names disagree: left to the model")


def finish(uf: ConstrainedUnionFind, rule: dict[str, str]) -> Clustering:
    clusters = [sorted(members) for members in uf.groups().values()]
    for cluster in clusters:
        if len(cluster) == 1:
            rule[cluster[0]] = "singleton"
    apart = [(str(a), str(b), r) for a, b, r in uf.held_back if uf.find(a) != uf.find(b)]  # else no matter
    return Clustering(clusters, rule, [(str(a), str(b), r) for a, b, r in uf.refused], apart)


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
