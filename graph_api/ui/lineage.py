"""数据血缘 /ui/lineage: for auditors (and a person, for their own values), a value → its statements →
their source records → the ingest runs that loaded them, as of a date; an entity's merges and splits.

GET /lineage and GET /entities/{id}/history answer (graph_api.routers.auditors): the same masking,
self-only check and access-log entry."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from graph_api import authz
from graph_api.routers import auditors
from graph_api.ui.pages import PageRoute, client_of, page, render
from graph_api.ui.sessions import Session
from ontology.model import load_ontology

router = APIRouter(route_class=PageRoute)


def _as_of(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:  # the date picker sends a day: the value held at the end of it
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59))
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"as_of: not a date: {text!r}") from None


@router.get("/ui/lineage")
def lineage_page(request: Request, session: Session = page("lineage"), entity: str | None = None,
                 attribute: str | None = None, as_of: str | None = None) -> Response:
    principal, app = session.principal, request.app
    entity = (entity or "").strip() or (principal.person_id if principal.role == "self" else None)
    properties = [(p.name, p.label_zh, p.label_en) for p in load_ontology().class_properties("Person")
                  if p.name != "id"]
    attribute = attribute or "name"
    answer = history = None
    if entity:
        answer = auditors.lineage(entity, attribute, principal, app.state.graph, app.state.state_store,
                                  client_of(request), _as_of(as_of))
        if principal.role in authz.PERMISSIONS["history"]:
            history = auditors.history(answer.entity_id, principal, app.state.graph, app.state.state_store)
    return render(request, "lineage.html", session, title="数据血缘 Lineage", entity=entity or "",
                  attribute=attribute, as_of=as_of or "", properties=properties, answer=answer, history=history)
