"""Person mentions by name: authors in author lists, project leaders and asset custodians written
without a staff number. Each is linked to a master Person, left external, or sent to review.

Candidates are the master persons one of whose records shares a name key with the mention: the
pinyin key covers homophones and traditional forms, and a romanised author (`Zhang Wei`,
`Wei Zhang`, `ZHANG, Wei`) carries its keys in either order. Candidates are scored:

- 3 for the same name in characters, 2 for the same pinyin key only;
- 2 when the record's organisation (第一作者单位, 负责人单位, 使用单位) is one of the candidate's;
- 1 when the candidate holds a staff number (authors, leaders and custodians are staff far more
  often than not; students still win on name and organisation);
- 2, in a second pass that uses the graph around the record, when the candidate advises or is
  advised by a person already linked from the same record (a PhD student co-authoring with the
  supervisor is the common case the organisation alone cannot settle among namesakes).

The best candidate is linked when it is the only one or leads the next by at least 2 (namesakes
in one college stay unresolved: a steward decides). A mention with no candidate is external (a
co-author from another institution). A one-word name (`Sukarno`), which has no key, finds the
persons of exactly that name. A relationship the same record also states by identifier
(负责人工号 beside 负责人) is left to the identifier.
"""

from __future__ import annotations

from collections import defaultdict
import json
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ingest.standardise import standardise_name
from resolution.person_linkage import review_item_id

NAME_MATCHES = ("name", "author_name")
MARGIN = 2


@dataclass
class MentionResult:
    linked: int = 0
    ambiguous: int = 0
    external: int = 0
    review: list[dict] = field(default_factory=list)  # ambiguous mentions with their candidates


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
    advising = _advising(con)
    rows = []
    for record_id, rel_type, position, text, keys, org in mentions:
        written = names.get(standardise_name(text) or "", set())
        # the same name as written is a candidate too: a one-word name (`Sukarno`) has no key
        candidates = set().union(written, *(by_key.get(k, set()) for k in (keys or "").split(";") if k))
        scored = sorted(((_score(profiles[m], m in written, org), m) for m in candidates), reverse=True)
        rows.append({"record_id": record_id, "rel_type": rel_type, "position": position, "mention": text,
                     "scored": scored, **_decide(scored, "mention:name")})
    # second pass: the people already linked from the same record vouch for their advisors and students
    linked_in: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["master_id"]:
            linked_in[row["record_id"]].add(row["master_id"])
    for row in rows:
        if row["rule"] != "ambiguous":
            continue
        near = set().union(*(advising.get(m, set()) for m in linked_in[row["record_id"]]))
        rescored = sorted(((s + (MARGIN if m in near else 0), m) for s, m in row["scored"]), reverse=True)
        row.update(_decide(rescored, "mention:name+advising"))
    result = MentionResult()
    for row in rows:
        scored = row.pop("scored")
        row["candidates"] = len(scored)
        if row["master_id"]:
            result.linked += 1
        elif row["rule"] == "ambiguous":
            result.ambiguous += 1
            result.review.append(_review_item(row, scored))
        else:
            result.external += 1
    if rows:
        con.register("_mentions", pa.Table.from_pylist(rows))
        con.execute("INSERT INTO res_mention SELECT * FROM _mentions")
        con.unregister("_mentions")
    return result


def _review_item(row: dict, scored: list[tuple[int, str]]) -> dict:
    """A review item for a steward: which of the closest candidates the mention names."""
    mention = f"mention:{row['rel_type']}:{row['position']}:{row['mention']}"
    top = scored[0][0]
    evidence = {"candidates": [{"master_id": m, "score": s} for s, m in scored if s >= top - MARGIN][:10]}
    return {"item_id": review_item_id("Person", row["record_id"], mention), "entity_type": "Person", "record_a": row["record_id"], "record_b": mention,
            "match_probability": None, "match_weight": None,
            "reason": "ambiguous mention: several people of this name fit", "evidence": json.dumps(evidence)}


def _decide(scored: list[tuple[int, str]], rule: str) -> dict:
    """Link the best candidate when it is alone or leads by MARGIN; no candidate: external."""
    if not scored:
        return {"master_id": None, "rule": "external", "score": None}
    best, second = scored[0][0], (scored[1][0] if len(scored) > 1 else None)
    if second is None or best - second >= MARGIN:
        return {"master_id": scored[0][1], "rule": rule, "score": best}
    return {"master_id": None, "rule": "ambiguous", "score": best}


def _advising(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Master person -> the masters they advise or are advised by (ADVISES by staff number)."""
    out: dict[str, set[str]] = defaultdict(set)
    for student, advisor in con.execute("""
            SELECT DISTINCT ls.master_id, lt.master_id
            FROM dwd_relation r
            JOIN res_link ls ON ls.member_id = r.record_id AND ls.entity_type = 'Person'
            JOIN dwd_person_record p ON p.staff_no = r.target_value
            JOIN res_link lt ON lt.member_id = p.record_id AND lt.entity_type = 'Person'
            WHERE r.rel_type = 'ADVISES' AND r.match_on = 'staff_no'""").fetchall():
        out[student].add(advisor)
        out[advisor].add(student)
    return out


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
