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
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from resolution.clusters import ConstrainedUnionFind
from resolution.exact import Clustering, add_records, finish, identifier_rows, link_identifiers
from resolution.person_model import PERSON_INPUT_SQL, train


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
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class PersonLinkage:
    clustering: Clustering
    review: list[dict]
    probabilistic_links: int
    notes: list[str] = field(default_factory=list)  # the evidence the model had, the training it skipped


def review_item_id(entity_type: str, a: str, b: str) -> str:
    """Stable across runs: the same pair is the same review item."""
    x, y = sorted((a, b))
    return hashlib.sha256(f"{entity_type}\x1f{x}\x1f{y}".encode()).hexdigest()[:16]


def link_persons(con: duckdb.DuckDBPyConnection, options: LinkageOptions) -> PersonLinkage:
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
    model = train(records, labels)
    notes = model.notes
    try:
        if options.model_path is not None:
            options.model_path.parent.mkdir(parents=True, exist_ok=True)
            model.save(options.model_path)
        linked = 0
        review: list[dict] = []
        uncertain: list[dict] = []
        for p in model.predict(options.review_threshold):  # strongest first
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
    finally:
        model.close()
    for p in uncertain:  # once every link is in: only pairs that still end apart need a steward
        a, b = p["unique_id_l"], p["unique_id_r"]
        if uf.find(a) != uf.find(b) and tuple(sorted((a, b))) not in decided:
            review.append(_item(p, "uncertain: between the review and the match threshold"))
    return PersonLinkage(finish(uf, rule), review, linked, notes)


def _item(pair: dict, reason: str) -> dict:
    evidence = {k[3:]: round(v, 3) for k, v in pair.items() if k.startswith("mw_") and v is not None}
    return {"item_id": review_item_id("Person", pair["unique_id_l"], pair["unique_id_r"]), "entity_type": "Person",
            "record_a": min(pair["unique_id_l"], pair["unique_id_r"]),
            "record_b": max(pair["unique_id_l"], pair["unique_id_r"]),
            "match_probability": pair["match_probability"], "match_weight": pair["match_weight"],
            "reason": reason, "evidence": json.dumps(evidence, ensure_ascii=False)}
