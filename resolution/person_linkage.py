"""Person clusters from every kind of evidence, in order of authority:

1. a steward's "not the same" (cannot-link: nothing overrides it);
2. a steward's "the same" (must-link: may even join two different ID numbers);
3. strong identifiers (validated ID number, passport, staff number, student number, institutional e-mail);
4. the probabilistic model's pairs at or above the match threshold, strongest first, so that a
   cluster that would join conflicting records (two valid ID numbers or passports of one country,
   a "not the same") is cut at its weakest links.

Pairs between the review and the match threshold that end in different clusters, and every
refused link, become review items carrying the match weight of each comparison.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from resolution import model_reuse
from resolution.clusters import ConstrainedUnionFind
from resolution.engines import MODEL_MEMORY_LIMIT, open_engine
from resolution.entity_evidence import NameWeights
from resolution.entity_match import SCORE_FLOOR, EntityMatch, RecordFacts, ensure_score_tables, match_clusters
from resolution.exact import STRONG_IDENTIFIERS, Clustering, add_records, finish, identifier_rows, link_identifiers
from resolution.held_back import score_held_back
from resolution.person_model import PERSON_INPUT_SQL, reuse, train
from resolution.stages import StageClock


@dataclass(frozen=True)
class Decision:
    """A steward's newest judgement on a pair of source records."""

    record_a: str
    record_b: str
    judgement: str  # same / not_same / unsure


@dataclass
class LinkageOptions:
    model_path: Path | None = None
    match_threshold: float = 0.99
    review_threshold: float = 0.5
    mention_match_threshold: float = 0.95
    review_budget: float = 0.01  # the review queue holds at most this share of Person records
    decisions: list[Decision] = field(default_factory=list)
    engine: str = "duckdb"  # where the Person model runs: duckdb | spark (resolution/engines.py)
    spark_master: str = "local[2]"
    memory_limit: str = MODEL_MEMORY_LIMIT  # the model's own DuckDB (resolution/engines.py)
    # A saved model is reused while at most this share of the Person records changed since it was
    # trained (resolution/model_reuse.py); `retrain` trains anew whatever changed.
    retrain_share: float = model_reuse.DEFAULT_RETRAIN_SHARE
    retrain: bool = False


@dataclass
class PersonLinkage:
    clustering: Clustering
    review: list[dict]
    probabilistic_links: int
    notes: list[str] = field(default_factory=list)  # the evidence the model had, the training it skipped
    entity_links: int = 0  # weakly identified records linked to the one entity that fits
    entity_scores: list[tuple[str, str, float, bool]] = field(default_factory=list)  # record, anchor record, p, linked
    name_weights: NameWeights | None = None  # the model's, for mentions
    model_reused: bool = False  # scored by the saved model (resolution/model_reuse.py), not one trained now


def review_item_id(entity_type: str, a: str, b: str) -> str:
    """Stable across runs: the same pair is the same review item."""
    x, y = sorted((a, b))
    return hashlib.sha256(f"{entity_type}\x1f{x}\x1f{y}".encode()).hexdigest()[:16]


def link_persons(con: duckdb.DuckDBPyConnection, options: LinkageOptions,
                 clock: StageClock | None = None) -> PersonLinkage:
    clock = clock or StageClock()
    with clock.stage("identifiers 标识符"):
        uf = ConstrainedUnionFind()
        rule: dict[str, str] = {}
        rows = identifier_rows(con)
        add_records(uf, rows)
        decided = {tuple(sorted((d.record_a, d.record_b))) for d in options.decisions if d.judgement != "unsure"}
        known = {r[0] for r in rows}
        for d in options.decisions:
            if d.judgement == "not_same" and d.record_a in known and d.record_b in known:
                uf.forbid(d.record_a, d.record_b)
        for d in options.decisions:
            if d.judgement == "same" and d.record_a in known and d.record_b in known:
                if uf.union(d.record_a, d.record_b, "steward:same", override_exclusive=True):
                    rule[d.record_a] = rule[d.record_b] = "steward:same"
        link_identifiers(uf, rows, rule)
        records = con.sql(PERSON_INPUT_SQL).to_arrow_table()
    if records.num_rows < 2:  # nothing to compare: identifiers and decisions are all there is
        return PersonLinkage(finish(uf, rule), [], 0,
                             [f"{records.num_rows} person record(s): no pairs to compare, no model trained"])
    labels = [(d.record_a, d.record_b, d.judgement == "same") for d in options.decisions if d.judgement != "unsure"]
    with clock.stage("model training 模型训练"):
        saved, why = model_reuse.reusable(con, options.model_path, labels, options.engine,
                                         options.retrain_share, options.retrain)
        model = None
        if saved is not None:
            try:
                model = reuse(records, saved, open_engine(options.engine, options.spark_master, options.memory_limit))
            except Exception as exc:  # noqa: BLE001 - a saved model Splink refuses: train anew
                why = f"model trained 模型训练: the saved model could not be loaded ({type(exc).__name__}: {exc})"
            else:
                if model is None:
                    why = "model trained 模型训练: this data calls for other settings (blocking) than the saved model's"
        trained = model is None
        if trained:
            model = train(records, labels, engine=open_engine(options.engine, options.spark_master,
                                                              options.memory_limit))
    notes = [why, *model.notes]  # a reused model's training notes are in its basis file
    try:
        if options.model_path is not None and trained:
            options.model_path.parent.mkdir(parents=True, exist_ok=True)
            model.save(options.model_path)
            model_reuse.remember(options.model_path, model_reuse.Basis(
                model_reuse.latest_run(con) or "", records.num_rows, model_reuse.labels_digest(labels),
                model_reuse.code_fingerprint(), options.engine, model_reuse.standardised_digest(con), model.notes))
        linked = 0
        review: list[dict] = []
        uncertain: list[dict] = []
        with clock.stage("pair scoring 配对打分"):
            scored = model.score(min(SCORE_FLOOR, options.review_threshold))
            _store_pair_scores(con, model.con, scored)
            # pairs the identifier rule held back (a shared staff number, names that disagree): scored too
            held = [p for p in score_held_back(model, records, uf.held_back)
                    if p["match_probability"] >= options.review_threshold]
        with clock.stage("clustering 聚类"):
            for p in heapq.merge(model.predict(options.review_threshold, scored=scored), held,
                                 key=lambda p: -p["match_probability"]):  # strongest first
                a, b = p["unique_id_l"], p["unique_id_r"]
                if p["match_probability"] < options.match_threshold:
                    uncertain.append(p)
                    continue
                if uf.find(a) == uf.find(b):
                    continue
                if uf.union(a, b, "probabilistic"):
                    linked += 1
                    for r in (a, b):
                        rule.setdefault(r, f"probabilistic:{p['match_probability']:.4f}")
                elif tuple(sorted((a, b))) not in decided:
                    review.append(_item(p, "conflict: would join two different ID numbers or passports, "
                                              "or a steward's 'not the same'"))
        with clock.stage("record-to-entity matching 记录对实体匹配"):
            strong = {r.record_id for r in rows if any(getattr(r, kind) for kind in STRONG_IDENTIFIERS)}
            facts = _record_facts(con, records)
            entities = EntityMatch()
            for what, is_item, is_anchor in _entity_passes(strong):
                found = match_clusters(model.con, scored, uf, what, is_item, is_anchor, facts, rule,
                                       options.match_threshold, options.review_threshold, decided, _item)
                entities.absorb(found)
            disagree = model.disagreement_weights(STRONG_IDENTIFIERS)
            name_weights = model.name_weights()
    finally:
        model.close()
    review += entities.review
    notes += entities.notes
    with clock.stage("clustering 聚类"):
        held = _identifiers_by_cluster(uf, rows, {uf.find(r) for p in uncertain
                                                  for r in (p["unique_id_l"], p["unique_id_r"])})
        for p in uncertain:  # once every link is in: only pairs that still end apart need a steward
            a, b = p["unique_id_l"], p["unique_id_r"]
            if a in entities.weak_records or b in entities.weak_records:
                continue  # weighed against every candidate entity at once, above
            if uf.find(a) == uf.find(b) or tuple(sorted((a, b))) in decided:
                continue
            p = _with_cluster_evidence(p, held[uf.find(a)], held[uf.find(b)], disagree)
            if p["match_probability"] >= options.review_threshold:
                review.append(_item(p, "uncertain: between the review and the match threshold"))
        clusters = finish(uf, rule)
    return PersonLinkage(clusters, review, linked, notes, entities.linked, entities.scores, name_weights,
                         model_reused=not trained)


def _store_pair_scores(con: duckdb.DuckDBPyConnection, model_con: duckdb.DuckDBPyConnection, scored: str) -> None:
    """Every pair the model scored (at or above SCORE_FLOOR) into res_pair_score, for the calibration
    table: streamed in batches from the model's database, millions of pairs at 1.5 M records."""
    ensure_score_tables(con)
    con.execute("DELETE FROM res_pair_score")
    reader = model_con.sql(f"SELECT unique_id_l AS record_a, unique_id_r AS record_b, match_probability FROM {scored}"
                           ).to_arrow_reader(500_000)
    for batch in reader:
        con.register("_pair_scores", pa.Table.from_batches([batch]))
        con.execute("INSERT INTO res_pair_score SELECT * FROM _pair_scores")
        con.unregister("_pair_scores")


def _record_facts(con: duckdb.DuckDBPyConnection, records: pa.Table) -> RecordFacts:
    """Each Person record's unit, source and what says which kind of person it is."""
    ids = records.column("unique_id").to_pylist()
    levels = dict(con.execute("SELECT record_id, degree_level FROM dwd_person_record "
                              "WHERE degree_level IS NOT NULL").fetchall())
    roles = {r: (staff is not None, levels.get(r), student is not None) for r, staff, student in zip(
        ids, records.column("staff_no").to_pylist(), records.column("student_no").to_pylist(), strict=True)}
    return RecordFacts(dict(zip(ids, records.column("org").to_pylist(), strict=True)),
                       dict(zip(ids, records.column("source").to_pylist(), strict=True)), roles)


def _entity_passes(strong: set[str]):
    """Record-to-entity matching, in two passes (resolution/entity_match.py):

    1. a lone record whose identifier no other record shares (a card whose 关联编号 was mistyped,
       a staff member known to one system only) against every entity with an identifier, lone
       records included: its identifier's typo level, or its disagreement, is evidence like any
       other;
    2. clusters without any strong identifier (finance payees, card holders without a number)
       against every entity with one — after pass 1, so that a mistyped card no longer poses as a
       second person of the same name."""
    def anchored(members) -> bool:
        return any(m in strong for m in members)

    yield ("lone records whose identifier no other record shares 孤立标识记录",
           lambda members: len(members) == 1 and anchored(members), anchored)
    yield ("weakly identified clusters (no strong identifier) 弱标识记录",
           lambda members: not anchored(members), anchored)


def _identifiers_by_cluster(uf, rows, roots: set) -> dict:
    """The strong identifiers each of the clusters `roots` holds, by kind: a person holds one of each
    (or a few: a student number per degree), so two entities that each hold one, none in common, are
    likely two people, whatever the records of one pair leave empty."""
    held: dict = defaultdict(lambda: defaultdict(set))
    for row in rows:
        root = uf.find(row.record_id)
        if root in roots:
            for kind in STRONG_IDENTIFIERS:
                value = getattr(row, kind)
                if value:
                    held[root][kind].add(value)
    return held


def _with_cluster_evidence(pair: dict, held_a: dict, held_b: dict, disagree: dict[str, float]) -> dict:
    """A pair re-scored with its two entities' identifiers: the records of the pair may lack a
    student number while both of their entities hold different ones (namesakes in one college)."""
    added = {}
    for kind, weight in disagree.items():
        if pair.get(f"mw_{kind}") in (None, 0.0) and held_a.get(kind) and held_b.get(kind) \
                and not held_a[kind] & held_b[kind]:
            added[kind] = weight
    if not added:
        return pair
    total = pair["match_weight"] + sum(added.values())  # the match weight includes the prior
    return {**pair, "match_weight": total, "match_probability": 1 / (1 + 2 ** -total),
            **{f"mw_{k}": v for k, v in added.items()}}


def _item(pair: dict, reason: str) -> dict:
    evidence = {k[3:]: round(v, 3) for k, v in pair.items() if k.startswith("mw_") and v is not None}
    return {"item_id": review_item_id("Person", pair["unique_id_l"], pair["unique_id_r"]), "entity_type": "Person",
            "record_a": min(pair["unique_id_l"], pair["unique_id_r"]),
            "record_b": max(pair["unique_id_l"], pair["unique_id_r"]),
            "match_probability": pair["match_probability"], "match_weight": pair["match_weight"],
            "reason": reason, "evidence": json.dumps(evidence, ensure_ascii=False)}
