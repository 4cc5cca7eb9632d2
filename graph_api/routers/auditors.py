"""Auditors: where a value came from (as of any date), an entity's history, who read whose data."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Query, status

from graph_api.deps import AccessLogReader, AuditTrailReader, ClientDep, GraphDep, HistoryReader, LineageReader, StateDep
from graph_api.lineage import attribute_lineage, entity_history, entity_label
from graph_api.models import AccessEntry, AuditEntry, EntityHistory, Lineage, UtcDateTime
from graph_api.person_view import NOT_YOURS, ensure_self_id, owns
from graph_api.routers.persons import correction_model
from ontology.masking import mask, may_see
from ontology.model import OntologyError, load_ontology
from queries import load_query

router = APIRouter(tags=["auditors 审计"])


def _current_entity(graph, entity_id: str) -> tuple[str, str | None]:
    """(ID, master class) of the entity now: a former ID leads to the entity it was merged into."""
    label = entity_label(graph, entity_id)
    if label is None:
        former = graph.query(load_query("former_id"), {"id": entity_id})
        if former and former[0]["merged_into"]:
            entity_id = former[0]["merged_into"]
            label = entity_label(graph, entity_id)
    return entity_id, label


@router.get("/lineage/{entity_id}/{attribute}", response_model=Lineage,
            summary="值的来源 / Where a value came from, and what it was on a date")
def lineage(entity_id: str, attribute: str, principal: LineageReader, graph: GraphDep, state: StateDep,
            client: ClientDep,
            as_of: UtcDateTime | None = Query(None, description="ISO date-time: the value held then")) -> Lineage:
    """Every statement ever made about the attribute (value as standardised and as written, source
    record, system, load, first and last seen, chosen or not, by which rule), the value as of a date,
    the steward judgements on the entity's records and the corrections asked for."""
    try:
        prop = load_ontology().prop(attribute)
    except OntologyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no property {attribute!r} in the ontology") from None
    if principal.role == "self":  # before looking the ID up: a person cannot learn which IDs exist
        ensure_self_id(graph, principal, entity_id)
    entity_id, label = _current_entity(graph, entity_id)
    if label is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no entity {entity_id}")
    person = label == "Person"
    if attribute not in load_ontology().cls(label).properties:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"a {label} has no attribute {attribute!r}")
    answer = attribute_lineage(graph, entity_id, attribute, as_of, label)
    visible = may_see(principal.role, prop)
    hide = (lambda v: v) if visible else (lambda v: None if v is None else mask(attribute, v))
    for s in answer["statements"]:
        s["value"], s["written_value"] = hide(s["value"]), hide(s["written_value"])
    records = {s["record_id"] for s in answer["statements"] if s["record_id"]}
    corrections = [correction_model(c) for c in state.corrections(entity_id) if c["property"] == attribute] \
        if person else []
    current = graph.query(f"MATCH (n:{label} {{id: $id}}) RETURN n.{attribute} AS v", {"id": entity_id})
    approved = sorted((c for c in corrections if c.status == "approved"), key=lambda c: c.decided_at)
    if person:
        state.log_access(principal, entity_id, f"GET /lineage/{entity_id}/{attribute}", [attribute, "lineage"],
                         client)
    return Lineage(entity_id=entity_id, property=attribute,
                   value=hide(current[0]["v"]),
                   rule=answer["rule"] or (f"correction:{approved[-1].request_id}" if approved else None),
                   masked=not visible, as_of=answer.get("as_of"), value_as_of=hide(answer.get("value_as_of")),
                   statements=answer["statements"], decisions=state.decisions_log(records) if records else [],
                   corrections=corrections)


@router.get("/entities/{entity_id}/history", response_model=EntityHistory,
            summary="实体历史 / Merges, splits and former IDs of an entity")
def history(entity_id: str, principal: HistoryReader, graph: GraphDep, state: StateDep) -> EntityHistory:
    answer = entity_history(graph, entity_id)
    if answer["status"] == "active" and entity_label(graph, entity_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no entity {entity_id}")
    current = answer["merged_into"] or entity_id
    records = {r["record_id"] for r in graph.query(load_query("person_sources"), {"id": current})}
    return EntityHistory(**answer, decisions=state.decisions_log(records) if records else [])


@router.get("/access-log", response_model=list[AccessEntry],
            summary="访问日志 / Who read whose record, when, which fields, through which endpoint")
def access_log(principal: AccessLogReader, graph: GraphDep, state: StateDep,
               person: str | None = Query(None, description="master person ID"),
               actor: str | None = Query(None, description="the token's name"),
               since: UtcDateTime | None = None,
               limit: int = Query(1000, ge=1, le=100_000)) -> list[AccessEntry]:
    """Append-only and never pruned by campus-kg (PIPL asks for at least 6 months). A `self` caller
    sees who read their own record."""
    if principal.role == "self":
        own = ensure_self_id(graph, principal, principal.person_id or "")
        if person is not None and not owns(graph, principal, person):
            raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS)
        person = own
    rows = state.access_entries(person_id=person, actor=actor, since=since)[-limit:]
    return [AccessEntry(**{**r, "fields": json.loads(r["fields"] or "[]")}) for r in rows]


@router.get("/audit-trail", response_model=list[AuditEntry],
            summary="操作审计 / Every steward and admin action, append-only")
def audit_trail(principal: AuditTrailReader, state: StateDep, actor: str | None = None,
                since: UtcDateTime | None = None, limit: int = Query(1000, ge=1, le=100_000)) -> list[AuditEntry]:
    rows = state.audit_entries(actor=actor, since=since)[-limit:]
    return [AuditEntry(**{**r, "detail": json.loads(r["detail"] or "{}")}) for r in rows]
