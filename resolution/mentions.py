"""Person mentions by name: authors in author lists, project leaders and asset custodians written
without a staff number. Each is linked to a master Person, left external, or sent to review.

Candidates are the master persons one of whose records shares a name key with the mention: the
pinyin key covers homophones and traditional forms, and a romanised author (`Zhang Wei`,
`Wei Zhang`, `ZHANG, Wei`) carries its keys in either order. Candidates are scored:

- 3 for the same name in characters, 2 for the same pinyin key only;
- 2 when the record's organisation (第一作者单位, 负责人单位, 使用单位) is one of the candidate's;
- 1 when the candidate holds a staff number (authors, leaders and custodians are staff far more
  often than not; students still win on name and organisation).

The best candidate is linked when it is the only one or leads the next by at least 2 (namesakes
in one college stay unresolved: a steward decides). A mention with no candidate is external (a
co-author from another institution). A relationship the same record also states by identifier
(负责人工号 beside 负责人) is left to the identifier.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from ingest.standardise import standardise_name

NAME_MATCHES = ("name", "author_name")
MARGIN = 2


@dataclass
class MentionResult:
    linked: int = 0
    ambiguous: int = 0
    external: int = 0


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS res_mention (
        record_id VARCHAR, rel_type VARCHAR, position INTEGER, mention VARCHAR, master_id VARCHAR,
        rule VARCHAR, candidates INTEGER, score INTEGER)""")


def link_mentions(con: duckdb.DuckDBPyConnection) -> MentionResult:
    ensure_table(con)
    con.execute("DELETE FROM res_mention")
    profiles = _person_profiles(con)
    by_key: dict[str, set[str]] = defaultdict(set)
    for master, profile in profiles.items():
        for key in profile["keys"]:
            by_key[key].add(master)
    names = _masters_by_name(con)
    mentions = con.execute(f"""
        SELECT r.record_id, r.rel_type, r.position, r.target_value, r.target_keys, d.org
        FROM dwd_relation r
        LEFT JOIN (SELECT record_id, COALESCE(max(value), NULL) AS org FROM dwd_statement
                   WHERE property = 'org_name' GROUP BY 1) d USING (record_id)
        WHERE r.target_type = 'Person' AND r.match_on IN {NAME_MATCHES}
          AND NOT EXISTS (  -- stated by identifier too: the identifier decides
              SELECT 1 FROM dwd_relation i WHERE i.record_id = r.record_id AND i.rel_type = r.rel_type
                AND i.match_on NOT IN {NAME_MATCHES})
        ORDER BY 1, 2, 3""").fetchall()
    result = MentionResult()
    rows = []
    for record_id, rel_type, position, text, keys, org in mentions:
        candidates = set().union(*(by_key.get(k, set()) for k in (keys or "").split(";") if k))
        written = names.get(standardise_name(text) or "", set())
        scored = sorted(((_score(profiles[m], m in written, org), m) for m in candidates), reverse=True)
        master, rule, score = None, "external", None
        if scored:
            best, second = scored[0][0], (scored[1][0] if len(scored) > 1 else None)
            if second is None or best - second >= MARGIN:
                master, rule, score = scored[0][1], "mention:name", best
                result.linked += 1
            else:
                rule = "ambiguous"
                result.ambiguous += 1
        else:
            result.external += 1
        rows.append({"record_id": record_id, "rel_type": rel_type, "position": position, "mention": text,
                     "master_id": master, "rule": rule, "candidates": len(scored), "score": score})
    if rows:
        con.register("_mentions", pa.Table.from_pylist(rows))
        con.execute("INSERT INTO res_mention SELECT * FROM _mentions")
        con.unregister("_mentions")
    return result


def _score(profile: dict, same_characters: bool, org: str | None) -> int:
    return (3 if same_characters else 2) + (2 if org and org in profile["orgs"] else 0) + (1 if profile["staff"] else 0)


def _person_profiles(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rows = con.execute("""
        SELECT l.master_id, list(DISTINCT p.name_keys), list(DISTINCT p.org_name), bool_or(p.staff_no IS NOT NULL),
               list(DISTINCT m.target_value)
        FROM res_link l JOIN dwd_person_record p ON p.record_id = l.member_id
        LEFT JOIN dwd_relation m ON m.record_id = p.record_id AND m.rel_type = 'MEMBER_OF'
        WHERE l.entity_type = 'Person' GROUP BY 1""").fetchall()
    out = {}
    for master, keys, orgs, staff, units in rows:
        out[master] = {"keys": {k for ks in keys if ks for k in ks.split(";") if k},
                       "orgs": {o for o in (orgs or []) + (units or []) if o}, "staff": bool(staff)}
    return out


def _masters_by_name(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for name, master in con.execute("""SELECT DISTINCT p.name, l.master_id FROM res_link l
            JOIN dwd_person_record p ON p.record_id = l.member_id WHERE l.entity_type = 'Person'""").fetchall():
        if name:
            out[name].add(master)
    return out
