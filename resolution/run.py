"""Resolve everything in the lakehouse: clusters -> stable master IDs -> links -> survivorship."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ingest.lakehouse import Lakehouse, dwd_table, fetch_one
from ontology.model import load_ontology
from resolution import master_ids, status, survivorship
from resolution import disciplines
from resolution.exact import Clustering, keyed_clusters
from resolution.organisations import org_members, org_parents
from resolution.entity_match import ensure_score_tables
from resolution.mentions import link_mentions
from resolution.person_linkage import LinkageOptions, link_persons
from resolution.review_priority import review_priority
from resolution.stages import StageClock


# Entities resolved from names and code lists rather than from their own source records.
VOCABULARY_ENTITIES = ("Organisation", "Discipline")


@dataclass
class ResolveResult:
    run_id: str
    masters: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    refused_merges: int = 0
    probabilistic_links: int = 0
    entity_links: int = 0  # weakly identified records linked to the one entity that fits
    review_items: int = 0
    review_deferred: int = 0  # beyond the review budget, of lower priority
    mentions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what evidence person linkage had, what it skipped
    model_reused: bool = False  # person linkage scored with the saved model (resolution/model_reuse.py)
    stages: StageClock = field(default_factory=StageClock)  # where the time went


def ensure_review_table(con) -> None:
    # res_review_deferred: items beyond the review budget, kept so that nothing a steward may need is lost
    for table in ("res_review", "res_review_deferred"):
        con.execute(f"""CREATE TABLE IF NOT EXISTS {table} (
            item_id VARCHAR PRIMARY KEY, entity_type VARCHAR, record_a VARCHAR, record_b VARCHAR,
            match_probability DOUBLE, match_weight DOUBLE, reason VARCHAR, evidence JSON, run_id VARCHAR,
            priority DOUBLE)""")
    # a workspace resolved before the queue had priorities: the next resolve fills the column
    con.execute("ALTER TABLE res_review ADD COLUMN IF NOT EXISTS priority DOUBLE")


def resolve(lake: Lakehouse, options: LinkageOptions | None = None,
            corrections: list[dict] | None = None, on_stage: Callable[[str], None] | None = None) -> ResolveResult:
    """Resolves every master class. Person linkage uses the steward decisions in `options` (they
    are applied on every run) and leaves its uncertain pairs in `res_review`; approved correction
    requests override survivorship."""
    options = options or LinkageOptions()
    con = lake.con
    run_id = lake.latest_run()
    if run_id is None:
        raise RuntimeError("nothing to resolve: run `campus-kg ingest` first")
    master_ids.ensure_tables(con)
    survivorship.ensure_tables(con)
    ensure_review_table(con)
    result = ResolveResult(run_id, stages=StageClock(on_start=on_stage))
    resolve_id = status.begin(con, run_id)  # committed now: a crash leaves it `running`
    con.execute("BEGIN TRANSACTION")
    try:
        name_weights = None  # the Person model's, for mentions
        review: list[dict] = []
        for cls in load_ontology().master_classes():
            if cls.name in VOCABULARY_ENTITIES:
                continue
            n = fetch_one(con, f"SELECT count(*) FROM {dwd_table(cls.name)}")[0]
            if n == 0:
                continue
            if cls.name == "Person":
                linkage = link_persons(con, options, result.stages)
                clustering = linkage.clustering
                review += linkage.review
                result.probabilistic_links = linkage.probabilistic_links
                result.entity_links = linkage.entity_links
                name_weights = linkage.name_weights
                result.notes += linkage.notes
                result.model_reused = linkage.model_reused
            else:
                with result.stages.stage("other entities 其他实体"):
                    clustering = keyed_clusters(con, cls.name, dwd_table(cls.name))
            with result.stages.stage("master IDs and links 主ID与链接"):
                _link(con, cls.name, clustering, run_id, result)
                if cls.name == "Person":
                    _store_entity_scores(con, linkage.entity_scores, "%", by_record=True)
        with result.stages.stage("other entities 其他实体"):
            _link_vocabularies(con, run_id, result)
        with result.stages.stage("mentions 提及"):
            linked = link_mentions(con, name_weights, options.mention_match_threshold)
            _store_entity_scores(con, linked.scores, "mention:%", by_record=False)
        result.notes += linked.notes
        result.mentions = {"linked": linked.linked, "ambiguous": linked.ambiguous, "external": linked.external}
        review += linked.review
        queued, deferred = _within_budget(review, options.review_budget, result.records.get("Person", 0))
        _store_review(con, queued, run_id)
        _store_review(con, deferred, run_id, table="res_review_deferred")
        result.review_items, result.review_deferred = len(queued), len(deferred)
        if deferred:
            result.notes.append(f"review budget 审核预算: {len(queued)} items queued (at most "
                                f"{options.review_budget:.1%} of person records, or {MIN_REVIEW_QUEUE}), {len(deferred)} of lower priority "
                                "deferred 暂缓 (res_review_deferred): they stay unlinked and are queued as stewards "
                                "clear the queue")
        with result.stages.stage("survivorship 存活规则"):
            survivorship.survive(con, corrections)
        status.finish(con, resolve_id, "complete", "; ".join(result.notes) or None)
        con.execute("COMMIT")
    except BaseException as exc:
        con.execute("ROLLBACK")
        with contextlib.suppress(duckdb.Error):  # the original error matters more than this row
            status.finish(con, resolve_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return result


def _link_vocabularies(con, run_id: str, result: ResolveResult) -> None:
    """Organisations by name and disciplines from the code list: entities of the shared vocabulary."""
    orgs = org_members(con)
    _link(con, "Organisation", Clustering(orgs, {m[0]: "exact:name" for m in orgs}, []), run_id, result)
    _store_org_parents(con, org_parents(con))
    con.execute("DELETE FROM res_attribute WHERE entity_type = 'Organisation'")
    con.execute("""INSERT INTO res_attribute
        SELECT master_id, 'Organisation', 'name', substr(member_id, 5), NULL, NULL, 1, 'exact:name'
        FROM res_link WHERE entity_type = 'Organisation'""")
    codes = disciplines.discipline_codes(con)
    members = [[disciplines.member(c)] for c, _ in codes]
    _link(con, "Discipline", Clustering(members, {m[0]: "code list" for m in members}, []), run_id, result)
    con.execute("DELETE FROM res_attribute WHERE entity_type = 'Discipline'")
    con.register("_disciplines", pa.table({"member": [disciplines.member(c) for c, _ in codes],
                                           "code": [c for c, _ in codes], "label": [n for _, n in codes]}))
    con.execute("""INSERT INTO res_attribute
        SELECT l.master_id, 'Discipline', p.property, p.value, NULL, NULL, 1, 'code list'
        FROM _disciplines d JOIN res_link l ON l.member_id = d.member AND l.entity_type = 'Discipline',
        LATERAL (VALUES ('name', d.label), ('discipline_code', d.code)) p(property, value)""")
    con.unregister("_disciplines")


def _store_entity_scores(con, scores: list[tuple[str, str, float, bool]], items: str, by_record: bool) -> None:
    """Candidates' posteriors (item, candidate, p, linked) into res_entity_score, for the calibration
    table of `campus-kg evaluate`, replacing the rows of `items` (a LIKE pattern). `by_record`: the
    candidate is named by one of its records (record-to-entity matching runs before master IDs
    exist), else by its master ID (mentions)."""
    ensure_score_tables(con)
    con.execute("DELETE FROM res_entity_score WHERE item_id LIKE ?", [items])
    if scores:
        item, candidate, p, linked = (list(c) for c in zip(*scores, strict=True))
        con.register("_scores", pa.table({"item": item, "candidate": candidate, "p": p, "linked": linked}))
        master = ("(SELECT master_id FROM res_link l WHERE l.member_id = s.candidate AND l.entity_type = 'Person')"
                  if by_record else "s.candidate")
        con.execute(f"INSERT INTO res_entity_score SELECT s.item, {master}, s.p, s.linked FROM _scores s")
        con.unregister("_scores")


def _store_org_parents(con, pairs: list[tuple[str, str]]) -> None:
    """SUB_ORGANISATION_OF between master organisations (university -> college -> department)."""
    con.execute("CREATE TABLE IF NOT EXISTS res_org_parent (child_id VARCHAR, parent_id VARCHAR)")
    con.execute("DELETE FROM res_org_parent")
    if pairs:
        con.register("_parents", pa.table({"child": [c for c, _ in pairs], "parent": [p for _, p in pairs]}))
        con.execute("""INSERT INTO res_org_parent SELECT DISTINCT c.master_id, p.master_id FROM _parents x
            JOIN res_link c ON c.member_id = x.child AND c.entity_type = 'Organisation'
            JOIN res_link p ON p.member_id = x.parent AND p.entity_type = 'Organisation'
            WHERE c.master_id <> p.master_id""")
        con.unregister("_parents")


# A queue this short is never cut: small data keeps every item it has.
MIN_REVIEW_QUEUE = 100


def _within_budget(items: list[dict], budget: float, person_records: int) -> tuple[list[dict], list[dict]]:
    """The review queue a data office can clear: the items whose decisions teach the model most
    (resolution/review_priority.py), at most `budget` × the Person records; the rest deferred."""
    for item in items:
        item["priority"] = review_priority(item)
    ordered = sorted({i["item_id"]: i for i in items}.values(), key=lambda i: (-i["priority"], i["item_id"]))
    cap = max(math.ceil(budget * person_records), MIN_REVIEW_QUEUE)
    return ordered[:cap], ordered[cap:]


def _store_review(con, items: list[dict], run_id: str, table: str = "res_review") -> None:
    con.execute(f"DELETE FROM {table} WHERE entity_type = 'Person'")
    if items:  # each with its priority: what a steward's decision on it would teach the model
        frame = pa.Table.from_pylist([{**i, "run_id": run_id, "priority": i.get("priority", review_priority(i))}
                                      for i in items])
        con.register("_review", frame)
        con.execute(f"""INSERT OR REPLACE INTO {table} (item_id, entity_type, record_a, record_b, match_probability,
                           match_weight, reason, evidence, run_id, priority)
                       SELECT item_id, entity_type, record_a, record_b, match_probability, match_weight, reason,
                              evidence, run_id, priority FROM _review""")
        con.unregister("_review")


def _link(con, entity_type: str, clustering: Clustering, run_id: str, result: ResolveResult) -> None:
    members = master_ids.assign(con, entity_type, clustering.clusters, run_id)
    con.execute("DELETE FROM res_link WHERE entity_type = ?", [entity_type])
    links = pa.table({
        "member_id": list(members),
        "entity_type": [entity_type] * len(members),
        "master_id": list(members.values()),
        "rule": [clustering.rule.get(m, "singleton") for m in members],
    })
    con.register("_links", links)
    con.execute("INSERT INTO res_link SELECT * FROM _links")
    con.unregister("_links")
    result.masters[entity_type] = len(clustering.clusters)
    result.records[entity_type] = len(members)
    result.refused_merges += len(clustering.refused)
