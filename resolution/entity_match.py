"""Record-to-entity matching for weakly identified Person records.

A finance payee (name + unit + bank account), a card holder without a linked number, a reader with
only a name: records that hold no strong identifier. Pair by pair, such a record scores about
p = 0.9 against its person's staff record (a unique name and the same college against a prior of
one in thousands), below the match threshold, and goes to review forever. Yet the question a data
office asks is not "are these two records the same?" but "which of our people is this, if any?",
and that question has more evidence: all of every candidate's records, and the fact that nobody
else fits.

So, once identifiers and confident pairs have formed clusters, each **weak cluster** (no member
holds an ID number, passport, staff or student number or institutional e-mail) is scored against
every **anchored cluster** (one that does) that blocking paired it with:

- per comparison (name, birth date, sex, organisation, address, ...), the strongest agreement
  between any of the weak cluster's records and any of the entity's records: the entity's evidence
  is all of its records (the staff record's name, the library record's unit);
- the entity's likelihood ratio 2^S, S being the sum of those comparisons' match weights (the
  trained model's, term frequencies included; the pairwise prior is not added);
- a posterior over the hypotheses "candidate 1", ..., "candidate k" and "none of ours" (an
  outside payee, a person not in any anchored system):

      p(candidate i) = λ · 2^S_i / (π · c · q + λ · Σ_j 2^S_j),   λ = (1 − π) / N

  with N the number of anchored entities, π the share of weak clusters that belong to none of
  them, c the chance that an outsider's name meets a candidate at all and q the chance that an
  outsider names one of our units, all measured on the weak clusters themselves (`Outsiders`).
  Entities that blocking did not pair with the record share no name key with it; their likelihood
  ratios are negligible.

A weak cluster links to its best candidate when that posterior reaches the match threshold: when
exactly one entity fits. Then, for the others, what kind of person each candidate is (staff, a
degree level, a student, none of these: `KindEvidence`) weighs too, by how often the source's
records that now belong to an entity with an identifier are of that kind: a finance system's
labour-fee payees are staff and graduate students, seldom undergraduates; a card system's holders
are anyone (about 0 bits). When several genuinely fit (namesakes in one college), the posterior is
split among them and the record goes to review once, against its best candidate, rather than once
per pair. Steward decisions still bind: a "not the same" refuses the link.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from resolution.clusters import ConstrainedUnionFind
from resolution.entity_evidence import KindEvidence, OrgEvidence, Outsiders, person_kind

# Comparisons read from the model's predictions (mw_x, plus mw_tf_adj_x where there is one).
ENTITY_RULE = "entity"
# Pairs scored at or above this are kept (res_pair_score), and candidates at or above it
# (res_entity_score, the best one always), for the calibration table; they weigh as competitors in
# record-to-entity matching, where pairs below it change no posterior noticeably.
SCORE_FLOOR = 0.01


def ensure_score_tables(con: duckdb.DuckDBPyConnection) -> None:
    """res_pair_score (scored record pairs) and res_entity_score (record or mention → candidate master)."""
    con.execute("CREATE TABLE IF NOT EXISTS res_pair_score (record_a VARCHAR, record_b VARCHAR, match_probability DOUBLE)")
    con.execute("""CREATE TABLE IF NOT EXISTS res_entity_score (
        item_id VARCHAR, master_id VARCHAR, match_probability DOUBLE, linked BOOLEAN)""")


@dataclass
class EntityMatch:
    linked: int = 0
    review: list[dict] = field(default_factory=list)
    # (weak record, anchor record, posterior, linked?) for every candidate: the calibration table's input
    scores: list[tuple[str, str, float, bool]] = field(default_factory=list)
    weak_records: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def absorb(self, other: "EntityMatch") -> None:
        self.linked += other.linked
        self.review += other.review
        self.scores += other.scores
        self.weak_records |= other.weak_records
        self.notes += other.notes


@dataclass(frozen=True)
class RecordFacts:
    """What record-to-entity matching knows of each Person record beyond the model's comparisons."""

    orgs: dict[str, str | None]  # its unit
    sources: dict[str, str] = field(default_factory=dict)  # its source
    # (holds a staff number, its degree level, holds a student number): the kind of person (person_kind)
    roles: dict[str, tuple[bool, str | None, bool]] = field(default_factory=dict)

    def kind(self, members: list[str]) -> str:
        degree, student = None, False
        for m in members:
            staff, level, enrolled = self.roles.get(m, (False, None, False))
            if staff:
                return person_kind(True, None, False)
            if level and (degree is None or level < degree):
                degree = level
            student = student or enrolled
        return person_kind(False, degree, student)

    def side(self, members: list[str]) -> tuple[str, str] | None:
        """The members' (most common) source, and the kind of person its records among them say."""
        sources = Counter(self.sources[m] for m in members if m in self.sources)
        if not sources:
            return None
        source = sources.most_common(1)[0][0]
        return source, self.kind([m for m in members if self.sources.get(m) == source])


def cluster_table(groups: dict[str, list[str]], items: set[str], anchors: set[str]) -> pa.Table:
    """Every record of an item or an anchor cluster, with its cluster and role (a cluster may be both:
    two lone records may be one person)."""
    records, clusters, roles = [], [], []
    for role, chosen in (("item", items), ("anchor", anchors)):
        for root in chosen:
            members = groups[root]
            records += members
            clusters += [root] * len(members)
            roles += [role] * len(members)
    return pa.table({"record_id": pa.array(records, pa.string()), "cluster": pa.array(clusters, pa.string()),
                     "role": pa.array(roles, pa.string())})


def candidate_sql(predictions: str, comparisons: list[str], tf: set[str]) -> str:
    """Weak cluster x anchored cluster: the strongest agreement per comparison over their record
    pairs (a comparison either side leaves empty counts 0), and the best pair to show a steward."""
    def weight(c: str) -> str:
        return f"mw_{c}" + (f" + mw_tf_adj_{c}" if c in tf else "")
    best = ",\n".join(f"COALESCE(max({weight(c)}) FILTER (WHERE gamma_{c} >= 0), 0) AS w_{c}" for c in comparisons)
    both_ways = " UNION ALL ".join(
        f"SELECT unique_id_{a} AS weak_id, unique_id_{b} AS anchor_id, match_probability, "
        + ", ".join(f"gamma_{c}, mw_{c}" + (f", mw_tf_adj_{c}" if c in tf else "") for c in comparisons)
        + f" FROM {predictions}" for a, b in (("l", "r"), ("r", "l")))
    org_level = "max(gamma_org)" if "org" in comparisons else "NULL"
    return f"""
        WITH pairs AS ({both_ways})
        SELECT w.cluster AS item, a.cluster AS entity,
               arg_max(p.weak_id, p.match_probability) AS weak_record,
               arg_max(p.anchor_id, p.match_probability) AS anchor_record,
               {org_level} AS org_level,
               {best}
        FROM pairs p
        JOIN _clusters w ON w.record_id = p.weak_id AND w.role = 'item'
        JOIN _clusters a ON a.record_id = p.anchor_id AND a.role = 'anchor' AND a.cluster <> w.cluster
        GROUP BY 1, 2"""


def match_clusters(con: duckdb.DuckDBPyConnection, predictions: str, uf: ConstrainedUnionFind, what: str,
                   is_item, is_anchor, facts: RecordFacts, rule: dict[str, str], match_threshold: float,
                   review_threshold: float, decided: set[tuple[str, str]], make_item) -> EntityMatch:
    """Links item clusters to anchor clusters in `uf` (see the module's docstring). `is_item(members)`,
    `is_anchor(members)`: which clusters are which; `what`: the items' description for the notes.
    `predictions`: the model's scored pairs (with gamma_ and mw_ columns) in `con`; `facts`: each
    record's unit, source and kind; `make_item(pair, reason)`: a review item."""
    result = EntityMatch()
    orgs = facts.orgs
    groups = {str(root): [str(m) for m in members] for root, members in uf.groups().items()}
    weak_clusters = {c for c, members in groups.items() if is_item(members)}
    anchors = {c for c, members in groups.items() if is_anchor(members)}
    result.weak_records = {m for c in weak_clusters for m in groups[c]}
    entities = len(anchors)
    if not weak_clusters or not entities:
        return result
    clusters = cluster_table(groups, weak_clusters, anchors)
    names = [r[0] for r in con.execute(f"DESCRIBE {predictions}").fetchall()]
    comparisons = [n[6:] for n in names if n.startswith("gamma_")]
    tf = {c for c in comparisons if f"mw_tf_adj_{c}" in names}
    con.register("_clusters", clusters)
    try:
        rows = con.execute(candidate_sql(predictions, comparisons, tf)).fetchall()
    finally:
        con.unregister("_clusters")
    org = OrgEvidence.measure({c: groups[c] for c in anchors}, orgs, set())
    if org.measured:
        result.notes.append(org.describe())
    by_item: dict[str, list[tuple[float, str, str, str, dict]]] = {}
    for item, entity, weak_record, anchor_record, org_level, *weights in rows:
        evidence = dict(zip(comparisons, weights, strict=True))
        if org_level is not None and org_level >= 0:  # the entity's units, not one record's
            evidence["org"] = org.same if org_level > 0 else org.other
        weights = list(evidence.values())
        by_item.setdefault(item, []).append((sum(weights), entity, weak_record, anchor_record, evidence))
    # Outsiders name their own institution (see Outsiders)
    ours = {orgs.get(m) for c in anchors for m in groups[c]} - {None}
    with_unit = {c for c in weak_clusters if any(orgs.get(m) for m in groups[c])}
    known_org = {c for c in weak_clusters if any(orgs.get(m) in ours for m in groups[c])}
    foreign = with_unit - known_org
    unfit = weak_clusters - by_item.keys()
    outsiders = Outsiders.measure(len(weak_clusters), len(unfit), len(foreign), len(foreign & by_item.keys()),
                                  len(unfit & with_unit), len(unfit & known_org))
    log_lambda = math.log2((1 - outsiders.share) / entities)
    result.notes.append(f"record-to-entity 记录对实体: {len(weak_clusters)} {what}, {len(by_item)} with candidates "
                        f"among {entities} entities; " + outsiders.describe())
    context = _Context(uf, groups, rule, result, match_threshold, review_threshold, decided, make_item,
                       log_lambda, known_org, outsiders)
    # first those that one entity fits on the comparisons alone, then the rest with the candidates'
    # kinds; most certain first in each
    held = [(item, candidates) for item, candidates in context.most_certain_first(by_item.items())
            if not context.decide(item, candidates, final=False)]
    evidence = _kind_evidence(uf, groups, facts, anchors, {facts.side(groups[i]) for i, _ in held})
    result.notes += [e.describe(f"{source}, {own}") for (source, own), (e, _) in sorted(evidence.items()) if e.measured]
    weighed = []
    for item, candidates in held:
        kind, kinds = evidence.get(facts.side(groups[item]), (None, {}))
        if kind is not None and kind.measured:
            candidates = [(s + kind.weight(kinds[entity]), entity, w, a, {**ev, "kind": kind.weight(kinds[entity])})
                          for s, entity, w, a, ev in candidates]
        weighed.append((item, candidates))
    for item, candidates in context.most_certain_first(weighed):
        context.decide(item, candidates, final=True)
    return result


def _kind_evidence(uf: ConstrainedUnionFind, groups: dict[str, list[str]], facts: RecordFacts, anchors: set[str],
                   sides: set[tuple[str, str] | None]) -> dict[tuple[str, str], tuple[KindEvidence, dict[str, str]]]:
    """Per side of the items still open — their source and the kind of person their own records say
    (a card holding a staff number is a staff member's card, a payee says nothing) —: the kinds of
    the entities with an identifier that the records of that side belong to now (each entity once),
    against the kinds of all those entities; and each entity's kind. A kind is read from the
    entity's records of other sources only: a staff system's records would otherwise make every
    entity they belong to staff, and say nothing."""
    sources = {side[0] for side in sides if side}
    of_anchor = {uf.find(groups[c][0]): c for c in anchors}
    linked: dict[tuple[str, str], set[str]] = defaultdict(set)
    for members in groups.values():
        for m in members:
            source = facts.sources.get(m)
            if source in sources and (anchor := of_anchor.get(uf.find(m))) is not None:
                linked[(source, facts.kind([m]))].add(anchor)
    # each anchor's kind, and its kind without each of those sources' records: one pass over members
    kinds: dict[str, dict[str, str]] = {source: {} for source in sources}
    for c in anchors:
        by_source: dict[str, list[str]] = defaultdict(list)
        for m in groups[c]:
            by_source[facts.sources.get(m)].append(m)
        whole = facts.kind(groups[c])
        for source in sources:
            kinds[source][c] = whole if source not in by_source else \
                facts.kind([m for other, ms in by_source.items() if other != source for m in ms])
    return {side: (KindEvidence.measure(Counter(kinds[side[0]][a] for a in linked[side]),
                                        Counter(kinds[side[0]].values())), kinds[side[0]])
            for side in sides - {None}}


@dataclass
class _Context:
    """One pass's fixed parts, for deciding its items one by one."""

    uf: ConstrainedUnionFind
    groups: dict[str, list[str]]
    rule: dict[str, str]
    result: EntityMatch
    match_threshold: float
    review_threshold: float
    decided: set[tuple[str, str]]
    make_item: object
    log_lambda: float
    known_org: set[str]
    outsiders: Outsiders

    def decide(self, item: str, candidates: list, final: bool) -> bool:
        """Links the item to its best candidate at the match threshold; when `final`, sends it to review
        otherwise (uncertain, or one of ours for sure but which one is not: namesakes in one college)
        and keeps its scores. Whether the item is settled (linked, or decided on, when final)."""
        scored = self.posteriors(item, candidates)
        p, s, entity, weak_record, anchor_record, evidence = scored[0]
        linked = False
        pair = tuple(sorted((weak_record, anchor_record)))
        if self.uf.find(weak_record) == self.uf.find(anchor_record):
            linked = True  # a lone record already joined through another lone record's match
        elif p >= self.match_threshold:
            if self.uf.union(weak_record, anchor_record, "probabilistic:entity"):
                linked = True
                self.result.linked += 1
                for member in self.groups[item]:
                    self.rule[member] = f"{ENTITY_RULE}:{p:.4f}"
            elif not final:
                return False
            elif pair not in self.decided:
                self.result.review.append(self.make_item(_pair(weak_record, anchor_record, p, s, evidence),
                                          "conflict: the one entity that fits holds another ID number or "
                                          "passport, or a steward said 'not the same'"))
        elif not final:
            return False
        elif (p >= self.review_threshold or sum(q for q, *_ in scored) >= 0.5) and pair not in self.decided:
            self.result.review.append(self.make_item(_pair(weak_record, anchor_record, p, s, evidence),
                                                     f"uncertain: record to entity, {len(scored)} candidate(s)"))
        self.result.scores += [(weak_record, a, q, linked and i == 0) for i, (q, _, _, _, a, _) in enumerate(scored)
                               if q >= SCORE_FLOOR or i == 0]
        return True

    def most_certain_first(self, items) -> list[tuple[str, list]]:
        return sorted(items, key=lambda t: (-self.posteriors(*t)[0][0], t[0]))

    def posteriors(self, item: str, candidates: list) -> list[tuple]:
        """(posterior, S, entity, weak record, anchor record, evidence) per candidate, best first."""
        # log-sum-exp: a match weight of 60 bits is fine in a double, 2,000 is not
        top = max(s for s, *_ in candidates)
        total = sum(2.0 ** (s - top) for s, *_ in candidates)
        denominator_log = top + self.log_lambda + math.log2(total)  # log2(λ Σ 2^S)
        outside_log = self.outsiders.log_mass(item in self.known_org)
        norm = max(denominator_log, outside_log)
        denom = 2.0 ** (denominator_log - norm) + 2.0 ** (outside_log - norm)
        return sorted(((2.0 ** (s + self.log_lambda - norm) / denom, s, entity, w, a, ev)
                       for s, entity, w, a, ev in candidates), key=lambda t: (-t[0], t[2]))


def _pair(a: str, b: str, p: float, weight: float, evidence: dict) -> dict:
    return {"unique_id_l": a, "unique_id_r": b, "match_probability": p, "match_weight": weight,
            **{f"mw_{c}": v for c, v in evidence.items() if v}}
