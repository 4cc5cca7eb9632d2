"""Person mentions by name: authors in author lists, project leaders and asset custodians written
without a staff number. Each is linked to a master Person, left external, or sent to review.

Candidates are the master persons one of whose records shares a name key with the mention: the
pinyin key covers homophones and traditional forms, and a romanised author (`Zhang Wei`,
`Wei Zhang`, `ZHANG, Wei`) carries its keys in either order. A one-word name (`Sukarno`), which
has no key, finds the persons of exactly that name.

Each candidate gets a likelihood ratio 2^S in bits, as in record-to-entity matching
(resolution/entity_match.py), from the trained Person model where it can:

- name: the same characters, log2(m / u) with u the share of our people who bear that name (a
  unique name is strong evidence, 张伟 is not); the same pinyin key only, log2(m / u) with u the
  share of our people whose names carry that key (`Mingqian Wu` meets one person, `Wei Zhang`
  hundreds) and m the exact name's for a romanised mention (romanising is how such a list writes
  every name, not an error) or the model's homophone level's for one in characters; a romanised
  name read in its less likely order (`Wei Zhang` as 魏章) weighs with a fifth of that m;
- unit (the mention's own — 作者单位 in an author table —, else the record's for the first
  mention only: 第一作者单位 and 负责人单位 are the first author's and the leader's): one of the
  candidate's units or not, weighted at entity level (`OrgEvidence`);
- kind: staff, a degree level (培养层次: 博士, 硕士, 本科), a student of unknown level or none of
  these (`person_kind`), weighed by how often the mentions of that relationship the first pass
  linked name each kind against its share among our people (`KindEvidence`; +1 bit for staff until
  measured): authors are staff and doctoral students, seldom undergraduates;
- in a second pass that uses the graph around the record, in rounds (a mention linked in one
  vouches for its co-authors in the next): whether one of the candidate's advisors, or students,
  is linked from the same record, and whether none is named there at all — measured per role on
  the linked mentions (`FlagEvidence`: a PhD student publishes with the supervisor, so a student
  named without one is unlikely to be that student; a supervisor often publishes without
  students); and, for a co-author without a unit of their own, the record's unit weighted by how
  often the co-authors linked in the first pass share it (`CoAuthorUnit`: about 0 bits where
  co-authors come from anywhere).

The posterior over "candidate i" and "outside the university" (`Outsiders` in
resolution/entity_match.py: how many mentions find no candidate, how often an outsider's name meets
one of ours and how often an outsider names one of our units, all measured on the mentions) decides: the best candidate is linked at the match threshold, the mention is external when
"outside" is the likelier, and otherwise ambiguous (a steward decides among the candidates).
A relationship the same record also states by identifier (负责人工号 beside 负责人) is left to the
identifier.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ingest.standardise import is_han, standardise_name
from resolution.entity_evidence import (CoAuthorUnit, FlagEvidence, KindEvidence, NameWeights, OrgEvidence,
                                        Outsiders, person_kind)
from resolution.entity_match import SCORE_FLOOR
from resolution.person_linkage import review_item_id

NAME_MATCHES = ("name", "author_name")
# Before it is measured (FlagEvidence): an advisor or student linked from the same record.
ADVISING_PRIOR_BITS = 4.0
# Rounds of the second pass: a mention linked in one may vouch for a co-author's in the next.
SECOND_PASS_ROUNDS = 3
SHOWN_CANDIDATES = 10
LEADERS = 20  # candidates scored one by one; the rest weigh as one mass
# Before it is measured (KindEvidence): authors, leaders and custodians are staff more often than not.
STAFF_PRIOR_BITS = 1.0
# A romanised name read in its less likely order (`Wei Zhang` as 魏章 rather than 张伟): that share
# of the likely order's m.
OTHER_ORDER = 0.2


@dataclass
class MentionResult:
    linked: int = 0
    ambiguous: int = 0
    external: int = 0
    review: list[dict] = field(default_factory=list)  # ambiguous mentions with their candidates
    scores: list[tuple[str, str, float, bool]] = field(default_factory=list)  # item, master, p, linked
    notes: list[str] = field(default_factory=list)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    # score: the posterior of the linked (or best) candidate; derived, so an older layout is replaced
    if con.execute("""SELECT count(*) FROM duckdb_columns() WHERE table_name = 'res_mention'
                      AND column_name = 'score' AND data_type = 'INTEGER'""").fetchone()[0]:
        con.execute("DROP TABLE res_mention")
    con.execute("""CREATE TABLE IF NOT EXISTS res_mention (
        record_id VARCHAR, rel_type VARCHAR, position INTEGER, mention VARCHAR, master_id VARCHAR,
        rule VARCHAR, candidates INTEGER, score DOUBLE)""")


def link_mentions(con: duckdb.DuckDBPyConnection, name_weights: NameWeights | None = None,
                  match_threshold: float = 0.95) -> MentionResult:
    weights = name_weights or NameWeights()
    ensure_table(con)
    con.execute("DELETE FROM res_mention")
    profiles = _person_profiles(con)
    result = MentionResult()
    if not profiles:
        _store(con, [])
        return result
    org = _org_evidence(con)
    mentions = con.execute(f"""
        SELECT r.record_id, r.rel_type, r.position, r.target_value, r.target_keys,
               -- the record's unit is its first author's (第一作者单位) or its leader's (负责人单位)
               COALESCE(r.mention_org, CASE WHEN r.position <= 1 THEN d.org END), d.org
        FROM dwd_relation r
        LEFT JOIN (SELECT record_id, COALESCE(max(value), NULL) AS org FROM dwd_statement
                   WHERE property = 'org_name' GROUP BY 1) d USING (record_id)
        WHERE r.target_type = 'Person' AND r.match_on IN {NAME_MATCHES}
          AND NOT EXISTS (  -- stated by identifier too: the identifier decides
              SELECT 1 FROM dwd_relation i WHERE i.record_id = r.record_id AND i.rel_type = r.rel_type
                AND i.match_on NOT IN {NAME_MATCHES} AND i.stated_by IS NOT DISTINCT FROM r.stated_by)
        ORDER BY 1, 2, 3""").fetchall()
    advisors = _advisors(con)
    ours = set().union(*(pr["orgs"] for pr in profiles.values()))
    rows = [{"record_id": record_id, "rel_type": rel_type, "position": position, "mention": text, "keys": keys,
             "unit": unit, "record_unit": None if unit else record_unit}
            for record_id, rel_type, position, text, keys, unit, record_unit in mentions]
    for row, (scored, tail, n) in zip(rows, _first_pass(con, rows, weights, org, len(profiles)), strict=True):
        row.update(scored=scored, tail=tail, n_candidates=n)
    # outside the university (see Outsiders): measured on the mentions
    unfit = [r for r in rows if not r["scored"]]
    foreign = [r for r in rows if r["unit"] and r["unit"] not in ours]
    outsiders = Outsiders.measure(len(rows), len(unfit), len(foreign), sum(1 for r in foreign if r["scored"]),
                                  sum(1 for r in unfit if r["unit"]), sum(1 for r in unfit if r["unit"] in ours))
    log_lambda = math.log2((1 - outsiders.share) / len(profiles))
    if rows:
        result.notes.append(f"mentions 提及: {len(rows)}, {len(unfit)} without a candidate; {outsiders.describe()}"
                            + (f"; {org.describe()}" if org.measured else ""))
    for row in rows:
        row["outside"] = outsiders.log_mass(row["unit"] in ours)
        row.update(_decide(row, log_lambda, match_threshold, "mention:name"))
    # the kinds of people each relationship names, measured on what the first pass linked, replace the prior
    prior = KindEvidence(prior_bits=STAFF_PRIOR_BITS)
    for rel_type, kind in _kind_evidence(rows, profiles).items():
        if not kind.measured:
            continue  # the prior stays
        result.notes.append(kind.describe(rel_type))
        shift = {k: kind.weight(k) - prior.weight(k) for k in {p["kind"] for p in profiles.values()}}
        for row in (r for r in rows if r["rel_type"] == rel_type):
            row["scored"] = {m: s + shift[profiles[m]["kind"]] for m, s in row["scored"].items()}
            row.update(_decide(row, log_lambda, match_threshold, "mention:name"))
    _second_pass(rows, profiles, advisors, org, result, log_lambda, match_threshold)
    out = []
    for row in rows:
        item = f"mention:{row['record_id']}:{row['rel_type']}:{row['position']}"
        posterior = row.pop("posterior")
        result.scores += [(item, m, q, m == row["master_id"]) for i, (m, q) in enumerate(posterior)
                          if q >= SCORE_FLOOR or i == 0]
        if row["master_id"]:
            result.linked += 1
        elif row["rule"] == "ambiguous":
            result.ambiguous += 1
            result.review.append(_review_item(row, posterior))
        else:
            result.external += 1
        out.append({"record_id": row["record_id"], "rel_type": row["rel_type"], "position": row["position"],
                    "mention": row["mention"], "master_id": row["master_id"], "rule": row["rule"],
                    "candidates": row["n_candidates"], "score": row["score"]})
    _store(con, out)
    return result


def _store(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    if rows:
        con.register("_mentions", pa.Table.from_pylist(rows))
        con.execute("INSERT INTO res_mention SELECT * FROM _mentions")
        con.unregister("_mentions")


def _unit(org: OrgEvidence, unit: str | None, theirs: set[str]) -> float:
    if not unit or not theirs:
        return 0.0
    return org.same if unit in theirs else org.other


# Our people by name, by name key, by unit and staff status, made once per first pass.
_CANDIDATE_TABLES = (
    ("_m_person", """SELECT l.master_id, p.name, p.name_keys, p.staff_no, p.org_name, p.record_id FROM res_link l
                    JOIN dwd_person_record p ON p.record_id = l.member_id WHERE l.entity_type = 'Person'"""),
    ("_m_by_name", "SELECT DISTINCT name, master_id FROM _m_person WHERE name IS NOT NULL"),
    ("_m_name_count", "SELECT name, count(*) AS n FROM _m_by_name GROUP BY 1"),
    ("_m_by_key", """SELECT DISTINCT key, master_id FROM (
                    SELECT unnest(string_split(name_keys, ';')) AS key, master_id FROM _m_person) WHERE key <> ''"""),
    ("_m_key_count", "SELECT key, count(*) AS n FROM _m_by_key GROUP BY 1"),
    ("_m_units", """SELECT DISTINCT master_id, unit FROM (
                    SELECT master_id, org_name AS unit FROM _m_person
                    UNION ALL SELECT p.master_id, r.target_value FROM dwd_relation r JOIN _m_person p USING (record_id)
                    WHERE r.rel_type = 'MEMBER_OF') WHERE unit IS NOT NULL"""),
    ("_m_staff", """SELECT master_id, bool_or(staff_no IS NOT NULL) AS staff,
                    bool_or(master_id IN (SELECT master_id FROM _m_units)) AS with_units FROM _m_person GROUP BY 1"""),
)
# Candidates (as counted by _chunks) weighed per statement: a mention keeps a top-LEADERS state while
# its candidates are read, and at 512 MB 2.9 M candidates in one statement ran out of memory.
CANDIDATES_PER_STATEMENT = 1_000_000


def _chunks(con: duckdb.DuckDBPyConnection, mentions: int) -> list[tuple[int, int]]:
    """Ranges of mention numbers of at most about CANDIDATES_PER_STATEMENT candidates each, by an upper
    bound (a mention's namesakes by name plus by each of its keys: one person may be counted twice)."""
    counts = con.execute("""
        SELECT mention_no, sum(n) FROM (
            SELECT m.mention_no, n.n FROM _mention_rows m JOIN _m_name_count n USING (name)
            UNION ALL
            SELECT k.mention_no, kc.n FROM (SELECT mention_no, unnest(keys) AS key FROM _mention_rows) k
            JOIN _m_key_count kc USING (key))
        GROUP BY 1 ORDER BY 1""").fetchall()
    out, lo, held = [], 0, 0
    for mention_no, n in counts:
        if held and held + n > CANDIDATES_PER_STATEMENT:
            out.append((lo, mention_no))
            lo, held = mention_no, 0
        held += n
    return out + [(lo, mentions)]


def _first_pass_sql(weights: NameWeights, org: OrgEvidence, masters: int) -> str:
    """Leaders and tail of the mentions numbered [$1, $2): the LEADERS best candidates by weight (ties:
    the smaller master ID) as a top-n per mention, not a sort of every candidate (张伟's hundreds of
    namesakes make millions of rows at 1.5 M records), and the others' mass below the last leader."""
    return f"""
        WITH mention AS (SELECT * FROM _mention_rows WHERE mention_no >= $1 AND mention_no < $2),
        candidates AS (  -- the name's weight: the written name's, else the best key's
            SELECT mention_no, master_id, max(name_weight) AS name_weight FROM (
                SELECT m.mention_no, b.master_id, log2({weights.exact_m!r}::DOUBLE * {masters} / n.n) AS name_weight
                FROM mention m JOIN _m_by_name b USING (name) JOIN _m_name_count n USING (name)
                UNION ALL
                SELECT k.mention_no, b.master_id,
                       log2(CASE WHEN k.romanised THEN {weights.exact_m!r}::DOUBLE ELSE {weights.key_m!r}::DOUBLE END
                            * CASE WHEN k.place = 1 THEN 1 ELSE {OTHER_ORDER!r} END * {masters} / kc.n)
                FROM (SELECT mention_no, romanised, unnest(keys) AS key, unnest(range(1, len(keys) + 1)) AS place
                      FROM mention) k
                JOIN _m_by_key b USING (key) JOIN _m_key_count kc USING (key))
            GROUP BY 1, 2),
        weighed AS (
            SELECT c.mention_no, c.master_id, c.name_weight
                   + CASE WHEN m.unit IS NULL OR NOT s.with_units THEN 0::DOUBLE
                          WHEN u.master_id IS NOT NULL THEN {org.same!r}::DOUBLE ELSE {org.other!r}::DOUBLE END
                   + CASE WHEN s.staff THEN {STAFF_PRIOR_BITS!r}::DOUBLE ELSE 0::DOUBLE END AS weight
            FROM candidates c JOIN mention m USING (mention_no)
            JOIN _m_staff s ON s.master_id = c.master_id
            LEFT JOIN _m_units u ON u.master_id = c.master_id AND u.unit = m.unit),
        top AS (
            SELECT mention_no, count(*) AS n_candidates,
                   min_by(struct_pack(master_id := master_id, weight := weight),
                          struct_pack(neg := -weight, master_id := master_id), {LEADERS}) AS leaders
            FROM weighed GROUP BY 1),
        cut AS (SELECT mention_no, n_candidates, leaders[{LEADERS}].weight AS weight,
                       leaders[{LEADERS}].master_id AS master_id FROM top WHERE n_candidates > {LEADERS})
        SELECT mention_no, l.master_id, l.weight, n_candidates FROM (
            SELECT mention_no, n_candidates, unnest(leaders) AS l FROM top)
        UNION ALL  -- the rest as one mass: log2 of the sum of 2^weight, every one at or below the last leader's
        SELECT w.mention_no, NULL, any_value(c.weight) + log2(sum(pow(2, w.weight - c.weight))),
               any_value(c.n_candidates)
        FROM weighed w JOIN cut c ON w.mention_no = c.mention_no
            AND (w.weight < c.weight OR (w.weight = c.weight AND w.master_id > c.master_id))
        GROUP BY w.mention_no"""


def _first_pass(con: duckdb.DuckDBPyConnection, rows: list[dict], weights: NameWeights, org: OrgEvidence,
                masters: int) -> list[tuple[dict[str, float], float | None, int]]:
    """Per mention: its LEADERS best candidates with their weights, the others' total as one log2
    mass (张伟 meets hundreds of namesakes at 1.5 M records: they weigh in every posterior, but only
    the leaders can be linked or gain in the second pass), and the number of candidates. In SQL:
    millions of (mention, candidate) pairs at 1.5 M records."""
    con.register("_mention_rows", pa.table({
        "mention_no": pa.array(range(len(rows)), pa.int64()),
        "name": pa.array([standardise_name(r["mention"]) or None for r in rows], pa.string()),
        "keys": pa.array([[k for k in (r["keys"] or "").split(";") if k] for r in rows], pa.list_(pa.string())),
        "romanised": pa.array([not is_han(r["mention"]) for r in rows], pa.bool_()),
        "unit": pa.array([r["unit"] for r in rows], pa.string())}))
    try:
        for name, sql in _CANDIDATE_TABLES:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        found = []
        for lo, hi in _chunks(con, len(rows)):
            found += con.execute(_first_pass_sql(weights, org, masters), [lo, hi]).fetchall()
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction keeps the original error
            con.unregister("_mention_rows")
            for name, _ in _CANDIDATE_TABLES:
                con.execute(f"DROP TABLE IF EXISTS {name}")
    out: list[tuple[dict[str, float], float | None, int]] = [({}, None, 0) for _ in rows]
    for mention_no, master, weight, n in found:
        scored, tail, _ = out[mention_no]
        if master is None:
            out[mention_no] = (scored, weight, n)
        else:
            scored[master] = weight
            out[mention_no] = (scored, tail, n)
    return out


def _decide(row: dict, log_lambda: float, match_threshold: float, rule: str) -> dict:
    """The posterior of each candidate against "outside the university"; link, external or ambiguous."""
    scored = row["scored"]
    if not scored:
        return {"master_id": None, "rule": "external", "score": None, "posterior": []}
    logs = {m: s + log_lambda for m, s in scored.items()}
    tail = None if row["tail"] is None else row["tail"] + log_lambda
    top = max([*logs.values(), row["outside"]])
    denominator = (sum(2.0 ** (v - top) for v in logs.values()) + 2.0 ** (row["outside"] - top)
                   + (2.0 ** (tail - top) if tail is not None else 0.0))
    posterior = sorted(((m, 2.0 ** (v - top) / denominator) for m, v in logs.items()), key=lambda t: (-t[1], t[0]))
    best, p = posterior[0]
    outside = 2.0 ** (row["outside"] - top) / denominator
    if p >= match_threshold:
        return {"master_id": best, "rule": rule, "score": p, "posterior": posterior}
    if outside >= 0.5:
        return {"master_id": None, "rule": "external", "score": p, "posterior": posterior}
    return {"master_id": None, "rule": "ambiguous", "score": p, "posterior": posterior}


def _kind_evidence(rows: list[dict], profiles: dict[str, dict]) -> dict[str, KindEvidence]:
    """Per relationship (AUTHOR_OF, LEADS, ...): which kinds of people the mentions linked so far name."""
    people = Counter(p["kind"] for p in profiles.values())
    out = {}
    for rel_type in sorted({r["rel_type"] for r in rows}):
        linked = Counter(profiles[r["master_id"]]["kind"] for r in rows if r["rel_type"] == rel_type and r["master_id"])
        out[rel_type] = KindEvidence.measure(linked, people, STAFF_PRIOR_BITS)
    return out


def _review_item(row: dict, posterior: list[tuple[str, float]]) -> dict:
    """A review item for a steward: which of the closest candidates the mention names."""
    mention = f"mention:{row['rel_type']}:{row['position']}:{row['mention']}"
    evidence = {"candidates": [{"master_id": m, "probability": round(q, 4)} for m, q in posterior[:SHOWN_CANDIDATES]]}
    return {"item_id": review_item_id("Person", row["record_id"], mention), "entity_type": "Person",
            "record_a": row["record_id"], "record_b": mention, "match_probability": posterior[0][1],
            "match_weight": None, "reason": "ambiguous mention: several people of this name fit",
            "evidence": json.dumps(evidence)}


def _org_evidence(con: duckdb.DuckDBPyConnection) -> OrgEvidence:
    """OrgEvidence measured on the resolved masters (each record's unit, or its MEMBER_OF unit); the
    counts of OrgEvidence.measure, in SQL: 1.3 M records at 1.5 M."""
    entities, covered, checked, unique = con.execute("""
        WITH rec AS (
            SELECT l.master_id, COALESCE(p.org_name, m.org) AS unit FROM res_link l
            JOIN dwd_person_record p ON p.record_id = l.member_id
            LEFT JOIN (SELECT record_id, min(target_value) AS org FROM dwd_relation WHERE rel_type = 'MEMBER_OF'
                       GROUP BY 1) m USING (record_id)
            WHERE l.entity_type = 'Person' AND COALESCE(p.org_name, m.org) IS NOT NULL),
        share AS (SELECT unit, count(*) / (SELECT count(*) FROM rec) AS share FROM rec GROUP BY 1),
        per_unit AS (SELECT master_id, unit, count(*) AS n FROM rec GROUP BY 1, 2),
        per_entity AS (
            SELECT master_id, sum(n) AS records, count(*) FILTER (WHERE n = 1) AS single, sum(share) AS covered
            FROM per_unit JOIN share USING (unit) GROUP BY 1)
        SELECT count(*), COALESCE(sum(covered), 0), COALESCE(sum(records) FILTER (WHERE records >= 2), 0),
               COALESCE(sum(single) FILTER (WHERE records >= 2), 0)
        FROM per_entity""").fetchone()
    return OrgEvidence.from_counts(entities, float(covered), int(checked), int(unique))


def _advisors(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Master person -> the masters who advise them (ADVISES by staff number)."""
    out: dict[str, set[str]] = defaultdict(set)
    for student, advisor in con.execute("""
            SELECT DISTINCT ls.master_id, lt.master_id
            FROM dwd_relation r
            JOIN res_link ls ON ls.member_id = r.record_id AND ls.entity_type = 'Person'
            JOIN dwd_person_record p ON p.staff_no = r.target_value
            JOIN res_link lt ON lt.member_id = p.record_id AND lt.entity_type = 'Person'
            WHERE r.rel_type = 'ADVISES' AND r.match_on = 'staff_no'""").fetchall():
        if student != advisor:
            out[student].add(advisor)
    return out


def _second_pass(rows: list[dict], profiles: dict[str, dict], advisors: dict[str, set[str]], org: OrgEvidence,
                 result: MentionResult, log_lambda: float, match_threshold: float) -> None:
    """The ambiguous mentions again, with the graph around the record: whether a candidate's advisor
    or student is linked from the same record (measured per role: students are named with their
    supervisor, supervisors often without a student), and for a co-author without a unit the
    record's unit as far as the linked co-authors share it. In rounds: a mention linked in one
    vouches for its co-authors in the next. A partner who is only a candidate of another ambiguous
    mention of the record neither vouches nor counts as missing."""
    students: dict[str, set[str]] = defaultdict(set)
    for student, theirs in advisors.items():
        for advisor in theirs:
            students[advisor].add(student)
    # (what is named, a candidate's partners, the people each partner is partner of)
    roles = [("a student's advisor 学生的导师", advisors, students),
             ("an advisor's student 导师的学生", students, advisors)]
    linked_in: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["master_id"]:
            linked_in[row["record_id"]].add(row["master_id"])
    evidence = [_advising_evidence(rows, partners_of, inverse, linked_in, len(profiles))
                for _, partners_of, inverse in roles]
    result.notes += [e.describe(f"advising 指导关系 ({what} named in the record)", "for anyone")
                     for (what, _, _), e in zip(roles, evidence, strict=True) if e.measured]
    co_unit = CoAuthorUnit.measure(rows, profiles, org.u_same)
    if co_unit.measured:
        result.notes.append(co_unit.describe())
    pending = [r for r in rows if r["rule"] == "ambiguous"]
    base = {id(r): ({m: s + co_unit.weight(r["record_unit"], profiles[m]["orgs"]) for m, s in r["scored"].items()}
                    if co_unit.measured and r["record_unit"] else dict(r["scored"]))
            for r in pending}
    weighed = [(partners_of, e.weight(True), e.weight(False)) for (_, partners_of, _), e in zip(roles, evidence,
                                                                                              strict=True)]
    for _ in range(SECOND_PASS_ROUNDS):
        # how many of a record's open mentions name each candidate: a partner named by another one
        named: dict[str, Counter] = defaultdict(Counter)
        for row in pending:
            named[row["record_id"]].update(row["scored"].keys())
        linked_now = []
        for row in pending:
            linked, others = linked_in[row["record_id"]], named[row["record_id"]]
            own = row["scored"].keys()
            vouched, scored = False, {}
            for m, s in base[id(row)].items():
                for partners_of, named_bits, absent_bits in weighed:
                    partners = partners_of.get(m)
                    if not partners:
                        continue
                    if not partners.isdisjoint(linked):
                        s += named_bits
                        vouched = True
                    elif not any(others[p] > (p in own) for p in partners):
                        s += absent_bits
                scored[m] = s
            row["scored"] = scored
            row.update(_decide(row, log_lambda, match_threshold,
                               "mention:name+advising" if vouched else "mention:name+record context"))
            if row["master_id"]:
                linked_now.append(row)
        if not linked_now:
            break
        for row in linked_now:
            linked_in[row["record_id"]].add(row["master_id"])
        # the next round weighs again only the records where someone was linked: nothing else changed
        touched = {row["record_id"] for row in linked_now}
        pending = [r for r in pending if not r["master_id"] and r["record_id"] in touched]


def _advising_evidence(rows: list[dict], partners_of: dict[str, set[str]], inverse: dict[str, set[str]],
                       linked_in: dict[str, set[str]], people: int) -> FlagEvidence:
    """One role: of the linked mentions whose person has partners in it, the share with one of them
    named in the same record — linked, or a candidate of one of its ambiguous mentions (m) —,
    against the chance for a random person with partners in that role (u: how many such people are
    partners of someone the record links, over all of them)."""
    unsettled: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["rule"] == "ambiguous":
            unsettled[row["record_id"]] |= set(row["scored"])
    yes = n = 0
    chance = 0.0
    for row in rows:
        partners = partners_of.get(row["master_id"] or "")
        if not partners:
            continue
        others = linked_in[row["record_id"]] - {row["master_id"]}
        n += 1
        yes += bool(partners & (others | unsettled[row["record_id"]]))
        chance += len(set().union(*(inverse.get(o, set()) for o in others))) / len(partners_of)
    u = min(max(chance / n, 1.0 / max(people, 2)), 0.5) if n else 0.5
    return FlagEvidence.measure(yes, n, u, ADVISING_PRIOR_BITS)


def _person_profiles(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rows = con.execute("""
        SELECT l.master_id, list(DISTINCT p.org_name), bool_or(p.staff_no IS NOT NULL), list(DISTINCT m.target_value),
               min(p.degree_level), bool_or(p.student_no IS NOT NULL)
        FROM res_link l JOIN dwd_person_record p ON p.record_id = l.member_id
        LEFT JOIN dwd_relation m ON m.record_id = p.record_id AND m.rel_type = 'MEMBER_OF'
        WHERE l.entity_type = 'Person' GROUP BY 1""").fetchall()
    out = {}
    for master, orgs, staff, units, degree_level, student in rows:
        out[master] = {"orgs": {o for o in (orgs or []) + (units or []) if o},
                       "kind": person_kind(bool(staff), degree_level, bool(student))}
    return out
