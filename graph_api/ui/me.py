"""个人数据中心 /ui/me: my record grouped as the personal data centre shows it, every value with its
source and when it was last confirmed, my corrections and who read my record.

Everything goes through the API's own functions (graph_api.routers.persons, .auditors): the same
masking, the same self-only check, the same access-log entry (endpoint `GET /ui/me`)."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from graph_api.models import CorrectionRequest
from graph_api.routers import auditors, persons
from graph_api.ui.pages import PageRoute, Posted, action, client_of, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)

# The personal data centre's sections (the first source document): record categories and related items.
SECTIONS = (
    ("basic", "基本信息", "Basic information", ("basic", "contact"), ()),
    ("career", "任职与履历", "Positions and career", ("employment",), ()),
    ("teaching", "教学", "Teaching", ("teaching",), ()),
    ("research", "科研成果与项目", "Research outputs and projects", ("research",), ("AUTHOR_OF", "LEADS", "ADVISES")),
    ("assets", "资产", "Assets", ("assets",), ("CUSTODIAN_OF",)),
    ("student", "学生记录", "Student records", ("education", "student_affairs", "library", "campus_card", "finance"),
     ()),
)


def sections(record: dict) -> list[dict]:
    by_category = {c["category"]: c for c in record["categories"]}
    placed = {c for s in SECTIONS for c in s[3]}
    out = []
    for key, zh, en, categories, relations in SECTIONS:
        attributes = [a for c in categories for a in by_category.get(c, {}).get("attributes", [])]
        if key == "basic":  # a category added to the ontology later still shows, under basic information
            attributes += [a for c in record["categories"] if c["category"] not in placed for a in c["attributes"]]
        related = [r for r in record["related"] if r["relation"] in relations]
        out.append({"key": key, "zh": zh, "en": en, "attributes": attributes, "related": related,
                    "memberships": record["memberships"] if key == "career" else []})
    return out


@router.get("/ui/me")
def my_page(request: Request, session: Session = page("me")) -> Response:
    principal, client = session.principal, client_of(request)
    graph, state = request.app.state.graph, request.app.state.state_store
    answer = persons.read_person(graph, state, principal, principal.person_id or "", "GET /ui/me", client)
    record = json.loads(answer.body)
    corrections = persons.my_corrections(principal, graph, state)
    readers = auditors.access_log(principal, graph, state, person=None, actor=None, since=None, limit=50)
    return render(request, "me.html", session, title="个人数据中心 Personal data centre", record=record,
                  sections=sections(record), corrections=corrections, readers=list(reversed(readers)),
                  sent=request.query_params.get("sent"))


@router.post("/ui/me/corrections")
def ask_correction(request: Request, posted: Posted = action("me")) -> Response:
    form, principal = posted.form, posted.session.principal
    body = CorrectionRequest(property=form.get("property", ""), proposed_value=form.get("proposed_value", ""),
                             reason=form.get("reason", ""), evidence=form.get("evidence") or None)
    made = persons.request_correction(body, principal, request.app.state.graph, request.app.state.state_store)
    return RedirectResponse(f"/ui/me?sent={made.request_id}#corrections", status.HTTP_303_SEE_OTHER)


@router.get("/ui/me/export")
def my_export(request: Request, session: Session = page("me"),
              format: Literal["json", "csv"] = Query("json")) -> Response:  # noqa: A002 — the API's name
    return persons.export_me(session.principal, request.app.state.graph, request.app.state.state_store,
                             client_of(request), format)
