"""Merge, split and unmerge on the steward workbench (/ui/entities), with a preview of what moves.

The preview is each entity's record as GET /persons/{id} reads it (logged the same way); the actions
are the API's (graph_api.routers.review: merge, split, unmerge), so the decision log, the audit
trail and the apply job are theirs."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from graph_api.models import MergeRequest, SplitRequest, UnmergeRequest
from graph_api.routers import persons, review
from graph_api.ui.pages import PageRoute, Posted, action, client_of, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)
MAX_PREVIEWED = 10  # entities in one merge preview


def _ids(text: str | None) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in (text or "").replace("，", ",").split(",") if i.strip()))


def _preview(request: Request, session: Session, master_id: str) -> dict:
    answer = persons.read_person(request.app.state.graph, request.app.state.state_store, session.principal,
                                 master_id, "GET /ui/entities", client_of(request))
    record = json.loads(answer.body)
    names = [a["value"] for c in record["categories"] for a in c["attributes"] if a["property"] == "name"]
    return {"id": record["master_id"], "requested": master_id, "status": record["status"],
            "name": names[0] if names else None, "records": record["source_records"]}


@router.get("/ui/entities")
def entities_page(request: Request, session: Session = page("entities.edit"), merge: str | None = None,
                  entity: str | None = None, done: str | None = None) -> Response:
    merging = _ids(merge)[:MAX_PREVIEWED]
    previews = [_preview(request, session, m) for m in merging]
    moving = sum(len(p["records"]) for p in previews[1:])
    split = _preview(request, session, entity.strip()) if entity and entity.strip() else None
    return render(request, "entities.html", session, title="实体合并与拆分 Merge and split", merge=", ".join(merging),
                  previews=previews, moving=moving, entity=split["id"] if split else (entity or ""), split=split,
                  done=done)


def _accepted(what: str, accepted) -> Response:
    return RedirectResponse(f"/ui/entities?{urlencode({'done': f'{what}: job {accepted.job}'})}",
                            status.HTTP_303_SEE_OTHER)


@router.post("/ui/entities/merge")
def merge(request: Request, posted: Posted = action("entities.edit")) -> Response:
    app = request.app
    body = MergeRequest(ids=_ids(posted.form.get("ids")), reason=posted.form.get("reason", ""))
    accepted = review.merge(body, posted.session.principal, app.state.graph, app.state.state_store, app.state.applier)
    return _accepted("merge " + ", ".join(body.ids), accepted)


@router.post("/ui/entities/split")
def split(request: Request, posted: Posted = action("entities.edit")) -> Response:
    """The form names a group for each record (`group:<record>` = 1, 2, …); the API checks the rest."""
    app, form = request.app, posted.form
    groups: dict[str, list[str]] = {}
    for key, group in form.items():
        if key.startswith("group:") and group:
            groups.setdefault(group, []).append(key.removeprefix("group:"))
    if len(groups) < 2:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "至少分成两组 / put the records in two groups at least")
    body = SplitRequest(groups=[groups[g] for g in sorted(groups)], reason=form.get("reason", ""))
    entity = form.get("entity", "")
    accepted = review.split(entity, body, posted.session.principal, app.state.graph, app.state.state_store,
                            app.state.applier)
    return _accepted(f"split {entity}", accepted)


@router.post("/ui/entities/unmerge")
def unmerge(request: Request, posted: Posted = action("entities.edit")) -> Response:
    app, entity = request.app, posted.form.get("entity", "")
    accepted = review.unmerge(entity, UnmergeRequest(reason=posted.form.get("reason", "")), posted.session.principal,
                              app.state.graph, app.state.state_store, app.state.applier)
    return _accepted(f"unmerge {entity}", accepted)
