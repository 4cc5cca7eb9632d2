"""画像 /ui/portraits: teacher and student portraits (an analyst's choice of person, or a person's own)
and the research portrait by organisation and year (analysts), with charts drawn as SVG.

The portrait endpoints answer (graph_api.routers.portraits): the same roles, self-only check,
masking of the hardship section and access-log entry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from graph_api import authz
from graph_api.routers import portraits
from graph_api.ui import charts
from graph_api.ui.pages import PageRoute, client_of, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)
KINDS = {"teacher": ("教师画像", "Teacher", "portraits.person"), "student": ("学生画像", "Student", "portraits.person"),
         "research": ("科研画像", "Research", "portraits.research")}
SECTION_LABELS = {"teaching_load": "教学工作量 Teaching load", "research_output_by_year": "年度成果 Outputs by year",
                  "projects": "项目 Projects", "advisees": "指导学生 Advisees", "courses": "课程 Courses",
                  "library": "图书馆 Library", "campus_card": "一卡通 Campus card",
                  "economic_hardship": "家庭经济困难 Economic hardship"}


@router.get("/ui/portraits")
def portraits_page(request: Request, session: Session = page("portraits.person", "portraits.research"),
                   kind: str | None = None, person: str | None = None, org: str | None = None) -> Response:
    principal, app = session.principal, request.app
    kinds = {k: v for k, v in KINDS.items() if principal.role in authz.PERMISSIONS[v[2]]}
    kind = kind or next(iter(kinds))
    if kind not in kinds:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"角色 {principal.role!r} 无权查看 {kind} 画像 / "
                                                       f"role {principal.role!r} may not see {kind} portraits")
    person = (person or "").strip() or (principal.person_id if principal.role == "self" else None)
    portrait = research = None
    chart_rows: dict[str, object] = {}
    if kind == "research":
        research = portraits.research(principal, app.state.graph, org or None)
        chart_rows["outputs"] = charts.bars([(str(r["year"]), r["outputs"]) for r in research.by_year])
        chart_rows["funding"] = charts.bars([(r["org_name"] or r["org_id"], r["funding"]) for r in research.by_org],
                                            unit=" 万元", colour=charts.GREEN)
    elif person:
        read = portraits.teacher if kind == "teacher" else portraits.student
        portrait = read(person, principal, app.state.graph, app.state.state_store, client_of(request))
        by_year = portrait.sections.get("research_output_by_year")
        if by_year and by_year.rows:
            chart_rows["outputs"] = charts.bars([(str(r["year"]), r["outputs"]) for r in by_year.rows])
    return render(request, "portraits.html", session, title="画像 Portraits", kinds=kinds, kind=kind,
                  person=person or "", org=org or "", portrait=portrait, research=research, charts=chart_rows,
                  labels=SECTION_LABELS, picks_person=principal.role != "self")
