"""Personal data centre: a person's record with every value's source, their copy, their corrections."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from campus_kg.csv_safe import escape_cell
from campus_kg.state import Principal, StateStore
from graph_api.deps import ClientDep, GraphDep, Me, PersonReader, StateDep
from graph_api.lineage import attribute_lineage
from graph_api.models import Correction, CorrectionRequest, PersonRecord
from graph_api.person_view import (find_permitted, find_stored, fields_returned, person_record, resolve_person,
                                   resolve_person_id)
from graph_api.served_graph import NoPersonRecords, ServedGraph
from ontology.masking import SEES_SENSITIVE
from ontology.model import load_ontology

router = APIRouter(tags=["persons 个人数据中心"])


def read_person(graph: ServedGraph, state: StateStore, principal: Principal, requested: str, endpoint: str,
                client: str | None) -> Response:
    """The record as JSON, from the served build's precomputed person records (graph_api.graph_build.person_records:
    one indexed lookup, masked or not by the caller's role); from the graph for a build without them.
    Who may read it is decided the same way on both paths, and every read is logged before it leaves."""
    try:
        stored = find_permitted(graph, principal, requested, find=find_stored)
    except NoPersonRecords:
        # One store call for an uncached person: the record comes with the check of who may read it.
        record = person_record(graph, requested, principal.role, find_permitted(graph, principal, requested))
        state.log_access(principal, record.master_id, endpoint, fields_returned(record), client)
        return _json(record)
    sees = principal.role in SEES_SENSITIVE
    state.log_access(principal, stored.master_id, endpoint, stored.fields(sees), client)
    return Response(stored.body(requested, sees), media_type="application/json")


@router.get("/persons/{master_id}", response_model=PersonRecord,
            summary="一个人的完整记录 / A person's master record, each value with its source")
def get_person(master_id: str, principal: PersonReader, graph: GraphDep, state: StateDep,
               client: ClientDep) -> Response:
    """Master attributes grouped by category, each with its source system, authority, last update and
    any open conflict; memberships and other relationships; the source records behind it. A former
    (merged) ID answers with the entity it was merged into (`status: merged`). `self` callers may
    read only their own record; sensitive values are masked for roles that may not see them."""
    return read_person(graph, state, principal, master_id, f"GET /persons/{master_id}", client)


@router.get("/me", response_model=PersonRecord, summary="我的数据 / My own record")
def get_me(principal: Me, graph: GraphDep, state: StateDep, client: ClientDep) -> Response:
    return read_person(graph, state, principal, principal.person_id or "", "GET /me", client)


def _json(record: PersonRecord) -> Response:
    """The record as built (it is a PersonRecord already): FastAPI would validate it a second time."""
    return Response(record.model_dump_json(), media_type="application/json")


def _corrections(state: StateStore, person_id: str) -> list[Correction]:
    return [correction_model(c) for c in state.corrections(person_id)]


def correction_model(c: dict) -> Correction:
    decided = c["status"] != "open"
    return Correction(request_id=c["request_id"], person_id=c["person_id"], property=c["property"],
                      current_value=c["current_value"], proposed_value=c["proposed_value"], reason=c["reason"],
                      evidence=c["evidence"], status=c["status"], requested_at=c["requested_at"],
                      decided_at=c["at"] if decided else None, decided_by=c["actor"] if decided else None,
                      note=c["note"])


@router.get("/me/export", summary="下载我的数据副本 / A complete copy of my data (PIPL art. 45)",
            responses={200: {"content": {"application/json": {}, "application/zip": {}},
                             "description": "JSON, or a zip of CSV files (`format=csv`)"}})
def export_me(principal: Me, graph: GraphDep, state: StateDep, client: ClientDep,
              format: Literal["json", "csv"] = Query("json", description="json, or csv: a zip of CSV files")
              ) -> Response:
    """Everything the graph holds about the caller: the record, the lineage of every value (all
    statements, retired ones too), corrections asked for, and who read the record and when."""
    record = person_record(graph, principal.person_id or "", principal.role)
    lineage = []
    for category in record.categories:
        for attr in category.attributes:
            lineage += [{"property": attr.property, **s}
                        for s in attribute_lineage(graph, record.master_id, attr.property)["statements"]]
    access = state.access_entries(person_id=record.master_id)
    state.log_access(principal, record.master_id, f"GET /me/export?format={format}",
                     fields_returned(record) + ["lineage", "access_log", "corrections"], client)
    corrections = [c.model_dump() for c in _corrections(state, record.master_id)]
    if format == "json":
        body = jsonable_encoder({"record": record, "lineage": lineage, "corrections": corrections,
                                 "access_log": access})
        return Response(json.dumps(body, ensure_ascii=False, indent=2), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{record.master_id}.json"'})
    tables = {
        "attributes.csv": [{"category": c.category, **a.model_dump(exclude={"conflict"}),
                            "conflict": json.dumps(jsonable_encoder(a.conflict), ensure_ascii=False)
                            if a.conflict else ""} for c in record.categories for a in c.attributes],
        "memberships.csv": [m.model_dump() for m in record.memberships],
        "related.csv": [{**r.model_dump(exclude={"properties"}), **r.properties} for r in record.related],
        "source_records.csv": [s.model_dump() for s in record.source_records],
        "lineage.csv": lineage, "corrections.csv": corrections, "access_log.csv": access,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, rows in tables.items():
            zf.writestr(name, _csv(rows))
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{record.master_id}.zip"'})


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 CSV with Chinese text correctly only with a BOM
    columns = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(out, fieldnames=columns or ["empty"])
    writer.writeheader()
    for r in rows:  # a value such as `=HYPERLINK(…)` is written as text: Excel would run it
        writer.writerow({k: "" if v is None else escape_cell(v) for k, v in jsonable_encoder(r).items()})
    return out.getvalue()


@router.post("/me/corrections", response_model=Correction, status_code=status.HTTP_201_CREATED,
             summary="申请更正 / Ask for a value to be corrected (PIPL art. 46)")
def request_correction(body: CorrectionRequest, principal: Me, graph: GraphDep, state: StateDep) -> Correction:
    """Goes to the stewards' queue (GET /corrections); its status and the steward's reason show in
    GET /me/corrections."""
    ont = load_ontology()
    if body.property not in {p.name for p in ont.class_properties("Person")} or body.property == "id":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{body.property!r} is not a person property")
    master_id, _, node = resolve_person(graph, principal.person_id or "")
    current = node.get(body.property)
    request_id = state.request_correction(master_id, body.property, None if current is None else str(current),
                                          body.proposed_value, body.reason, body.evidence, principal.name)
    state.audit(principal, "correction.request", master_id, {"request_id": request_id, "property": body.property})
    return correction_model(state.correction(request_id))  # type: ignore[arg-type]


@router.get("/me/corrections", response_model=list[Correction],
            summary="我的更正申请 / My correction requests and their status")
def my_corrections(principal: Me, graph: GraphDep, state: StateDep) -> list[Correction]:
    master_id, _ = resolve_person_id(graph, principal.person_id or "")
    return _corrections(state, master_id)
