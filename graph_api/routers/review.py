"""Stewards: the duplicate queue, decisions, merges, splits, unmerges and correction requests.

Every action is appended to the audit trail and to the steward-decision log (the crown jewels),
then applied to the served graph by the applier (re-resolve + patch) without a full rebuild."""

from __future__ import annotations

import itertools
import json

import duckdb
from fastapi import APIRouter, HTTPException, Query, status

from campus_kg.state import DecisionConflict, StateStore
from campus_kg.workspace import Workspace
from graph_api.deps import (ApplierDep, CorrectionReviewer, EntityEditor, GraphDep, JobReader, StateDep, Steward,
                            WorkspaceDep)
from graph_api.models import (Accepted, ApplyJob, Comparison, Correction, CorrectionDecision, Judgement,
                              MergeRequest, RecordSide, ReviewItem, ReviewItemDetail, ReviewPage, SplitRequest,
                              UnmergeRequest)
from graph_api.routers.persons import correction_model
from graph_api.lineage import source_systems
from graph_api.served_graph import ServedGraph
from queries import load_query

router = APIRouter(tags=["stewards 数据管家"])

# Splink comparison name -> the ontology property it compares (for the side-by-side view).
COMPARED = {"name": "name", "dob": "birth_date", "sex": "sex", "org": "org_name", "id_number": "id_number",
            "staff_no": "staff_no", "student_no": "student_no", "email": "email"}
MAX_SPLIT_PAIRS = 2_000


def _queue(workspace: Workspace, where: str = "true", params: list | None = None) -> list[dict]:
    if not workspace.review_queue.exists():
        return []
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet(?) WHERE {where}", [str(workspace.review_queue), *(params or [])])
        columns = [d[0] for d in cur.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    # the items whose decision teaches the model most first; a queue published before priorities
    # existed has none, and keeps the item order
    return sorted(rows, key=lambda r: (-(r.get("priority") or 0.0), r["item_id"]))


def _judgements(state: StateStore) -> dict[tuple[str, str], str]:
    return {(d["record_a"], d["record_b"]): d["judgement"] for d in state.decisions()}


def _item(row: dict, judgements: dict) -> ReviewItem:
    judgement = judgements.get(tuple(sorted((row["record_a"], row["record_b"]))))
    return ReviewItem(item_id=row["item_id"], entity_type=row["entity_type"], record_a=row["record_a"],
                      record_b=row["record_b"], master_a=row["master_a"], master_b=row["master_b"],
                      match_probability=row["match_probability"], match_weight=row["match_weight"],
                      priority=row.get("priority"), reason=row["reason"],
                      departments=sorted({d for d in (row["department_a"], row["department_b"]) if d}),
                      status="decided" if judgement in ("same", "not_same") else "open", judgement=judgement)


@router.get("/review/queue", response_model=ReviewPage,
            summary="待审核重复 / Duplicate candidates to review, most to teach the model first")
def review_queue(principal: Steward, state: StateDep, workspace: WorkspaceDep,
                 entity_type: str | None = None,
                 min_score: float = Query(0.0, ge=0, le=1, description="lowest match probability"),
                 max_score: float = Query(1.0, ge=0, le=1, description="highest match probability"),
                 department: str | None = Query(None, description="department of either record's system"),
                 item_status: str = Query("open", alias="status", pattern="^(open|decided|all)$"),
                 page: int = Query(1, ge=1, le=100_000), page_size: int = Query(50, ge=1, le=500)) -> ReviewPage:
    judgements = _judgements(state)
    scored_only = min_score > 0 or max_score < 1  # a score band leaves out items without a score (mentions)
    items = [_item(r, judgements) for r in _queue(workspace)]
    items = [i for i in items
             if (entity_type is None or i.entity_type == entity_type)
             and (scored_only is False or (i.match_probability is not None
                                           and min_score <= i.match_probability <= max_score))
             and (department is None or department in i.departments)
             and (item_status == "all" or i.status == item_status)]
    start = (page - 1) * page_size
    return ReviewPage(total=len(items), page=page, page_size=page_size, items=items[start:start + page_size])


def _review_row(workspace: Workspace, item_id: str, state: StateStore | None = None,
                graph: ServedGraph | None = None) -> dict:
    """The item in the queue; once decided and applied it has left the queue, and the decision log
    still answers for it (without the scores, which the re-run no longer computed)."""
    rows = _queue(workspace, "item_id = ?", [item_id])
    if rows:
        return rows[0]
    decided = [d for d in (state.decisions_log() if state else []) if d["review_item"] == item_id]
    if not decided or graph is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no review item {item_id}")
    d = decided[-1]
    systems = source_systems(graph)
    sides = {k: _record(graph, d[k]) for k in ("record_a", "record_b")}
    return {"item_id": item_id, "entity_type": d["entity_type"], "record_a": d["record_a"], "record_b": d["record_b"],
            "master_a": sides["record_a"].master_id if sides["record_a"] else None,
            "master_b": sides["record_b"].master_id if sides["record_b"] else None,
            "match_probability": None, "match_weight": None, "reason": "decided", "evidence": None,
            **{f"department_{k[-1]}": systems.get(v.system, {}).get("department") if v else None
               for k, v in sides.items()}}


def _record(graph: ServedGraph, record_id: str) -> RecordSide | None:
    rows = graph.query(load_query("record_values"), {"id": record_id})
    if not rows:
        return None
    values = {r["property"]: r["value"] for r in rows if r["property"] is not None}
    return RecordSide(record_id=record_id, system=rows[0]["system"],
                      system_name=source_systems(graph).get(rows[0]["system"], {}).get("name"),
                      master_id=rows[0]["master_id"], values=values)


@router.get("/review/items/{item_id}", response_model=ReviewItemDetail,
            summary="审核详情 / The two records side by side, with the match weight of every comparison")
def review_item(item_id: str, principal: Steward, graph: GraphDep, state: StateDep,
                workspace: WorkspaceDep) -> ReviewItemDetail:
    row = _review_row(workspace, item_id, state, graph)
    item = _item(row, _judgements(state))
    records = [r for r in (_record(graph, row["record_a"]), _record(graph, row["record_b"])) if r is not None]
    evidence = json.loads(row["evidence"]) if row["evidence"] else {}
    values = [r.values for r in records] + [{}, {}]
    comparisons = [Comparison(comparison=name, match_weight=weight if isinstance(weight, (int, float)) else None,
                              value_a=values[0].get(COMPARED.get(name, name)),
                              value_b=values[1].get(COMPARED.get(name, name)))
                   for name, weight in evidence.items()]
    decisions = state.decisions_log({row["record_a"], row["record_b"]})
    for master in {m for m in (row["master_a"], row["master_b"]) if m}:
        state.log_access(principal, master, f"GET /review/items/{item_id}", ["source_records"], None)
    return ReviewItemDetail(item=item, records=records, comparisons=comparisons,
                            decisions=[d for d in decisions if {d["record_a"], d["record_b"]} ==
                                       {row["record_a"], row["record_b"]}])


def _accepted(applier, decision_ids: list[int], reason: str) -> Accepted:
    job = applier.request(reason)
    return Accepted(decisions=decision_ids, job=job,
                    detail="recorded; the served graph follows when the apply job finishes (GET /jobs/apply)")


@router.post("/review/items/{item_id}/decision", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED,
             summary="审核决定 / Same, not the same, or unsure")
def decide(item_id: str, body: Judgement, principal: Steward, graph: GraphDep, state: StateDep,
           workspace: WorkspaceDep, applier: ApplierDep) -> Accepted:
    row = _review_row(workspace, item_id)
    if any(_record(graph, r) is None for r in (row["record_a"], row["record_b"])):
        raise HTTPException(status.HTTP_409_CONFLICT, "this item is not a pair of source records (a name mention): "
                                                      "link the mention by correcting the source instead")
    try:  # one decision closes an item: of stewards deciding at once, one wins and the others hear so
        decision = state.add_decision(row["entity_type"], row["record_a"], row["record_b"], body.judgement,
                                      principal.name, body.reason, item_id)
    except DecisionConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    state.audit(principal, "review.decision", item_id, {"judgement": body.judgement, "reason": body.reason,
                                                        "decision": decision})
    return _accepted(applier, [decision], f"review item {item_id}: {body.judgement}")


def _records_of(graph: ServedGraph, master_id: str) -> list[str]:
    return [r["record_id"] for r in graph.query(load_query("person_sources"), {"id": master_id})]


@router.post("/entities/merge", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED,
             summary="合并实体 / These master entities are one")
def merge(body: MergeRequest, principal: EntityEditor, graph: GraphDep, state: StateDep,
          applier: ApplierDep) -> Accepted:
    anchors = []
    for master in dict.fromkeys(body.ids):
        records = _records_of(graph, master)
        if not records:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {body.entity_type} {master} with source records")
        anchors.append(min(records))
    if len(anchors) < 2:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give at least two different entities")
    ids = [state.add_decision(body.entity_type, anchors[0], other, "same", principal.name, body.reason)
           for other in anchors[1:]]
    state.audit(principal, "entities.merge", ",".join(body.ids), {"reason": body.reason, "decisions": ids})
    return _accepted(applier, ids, f"merge {', '.join(body.ids)}")


@router.post("/entities/{master_id}/split", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED,
             summary="拆分实体 / These records of the entity are separate entities")
def split(master_id: str, body: SplitRequest, principal: EntityEditor, graph: GraphDep, state: StateDep,
          applier: ApplierDep) -> Accepted:
    records = set(_records_of(graph, master_id))
    if not records:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no entity {master_id} with source records")
    named = [r for g in body.groups for r in g]
    if len(named) != len(set(named)) or any(not g for g in body.groups):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "each record in exactly one non-empty group")
    if unknown := set(named) - records:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"not records of {master_id}: {', '.join(sorted(unknown))}")
    pairs = [(a, b) for g1, g2 in itertools.combinations(body.groups, 2) for a in g1 for b in g2]
    if len(pairs) > MAX_SPLIT_PAIRS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"at most {MAX_SPLIT_PAIRS} record pairs")
    ids = [state.add_decision("Person", a, b, "not_same", principal.name, body.reason) for a, b in pairs]
    state.audit(principal, "entities.split", master_id, {"groups": body.groups, "reason": body.reason,
                                                         "decisions": ids})
    return _accepted(applier, ids, f"split {master_id}")


@router.post("/entities/{master_id}/unmerge", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED,
             summary="撤销合并 / Undo the steward merges inside this entity")
def unmerge(master_id: str, body: UnmergeRequest, principal: EntityEditor, graph: GraphDep, state: StateDep,
            applier: ApplierDep) -> Accepted:
    """Every pair a steward judged `same` inside the entity is judged `not_same` now (a newer row:
    the old judgements stay in the log). Merges the matcher made are undone with /split."""
    records = set(_records_of(graph, master_id))
    if not records:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no entity {master_id} with source records")
    merged = [d for d in state.decisions() if d["judgement"] == "same"
              and d["record_a"] in records and d["record_b"] in records]
    if not merged:
        raise HTTPException(status.HTTP_409_CONFLICT, f"no steward merged anything into {master_id}")
    ids = [state.add_decision(d["entity_type"], d["record_a"], d["record_b"], "not_same", principal.name,
                              body.reason) for d in merged]
    state.audit(principal, "entities.unmerge", master_id, {"reason": body.reason, "decisions": ids,
                                                           "undone": [d["id"] for d in merged]})
    return _accepted(applier, ids, f"unmerge {master_id}")


@router.get("/corrections", response_model=list[Correction], summary="更正申请 / Correction requests")
def corrections(principal: CorrectionReviewer, state: StateDep,
                request_status: str = Query("open", alias="status", pattern="^(open|approved|refused|all)$")
                ) -> list[Correction]:
    return [correction_model(c) for c in state.corrections(status=None if request_status == "all" else request_status)]


@router.post("/corrections/{request_id}/decision", response_model=Correction,
             summary="批准或驳回更正 / Approve or refuse a correction (with the reason the person sees)")
def decide_correction(request_id: str, body: CorrectionDecision, principal: CorrectionReviewer, state: StateDep,
                      applier: ApplierDep) -> Correction:
    try:
        decided = state.decide_correction(request_id, body.status, principal.name, body.note)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no correction request {request_id}") from None
    except DecisionConflict as exc:  # decided already, or by another steward at the same moment
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    state.audit(principal, f"correction.{body.status}", request_id, {"note": body.note})
    if body.status == "approved":
        applier.request(f"correction {request_id} approved")
    return correction_model(decided)


@router.get("/jobs/apply", response_model=ApplyJob, summary="应用进度 / Applying decisions to the served graph")
def apply_job(principal: JobReader, applier: ApplierDep) -> ApplyJob:
    return ApplyJob(**applier.status())
