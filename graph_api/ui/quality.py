"""数据质量 /ui/quality: departments with traffic lights, drilled down to tables, fields, dimensions and
example rows, and the trend across ingest runs — the report GET /quality serves, as a page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from graph_api.routers import portraits
from graph_api.ui import charts
from graph_api.ui.pages import PageRoute, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)
DIMENSIONS = (("completeness", "完整性"), ("validity", "有效性"), ("accuracy", "准确性"),
              ("consistency", "一致性"), ("uniqueness", "唯一性"), ("timeliness", "及时性"))


@router.get("/ui/quality")
def quality_page(request: Request, session: Session = page("quality"), department: str | None = None) -> Response:
    report = portraits.quality(session.principal, request.app.state.workspace)
    departments = report.get("departments", [])
    chosen = department if department in {d["department"] for d in departments} else None
    tables = [t for t in report.get("tables", []) if chosen is None or t.get("department") == chosen]
    fields = [f for f in report.get("worst_fields", []) if chosen is None or f.get("department") == chosen]
    trend = report.get("trend", [])
    if chosen:
        points = [(run["at"][:10], run["departments"][chosen]["score"]) for run in trend
                  if chosen in run.get("departments", {})]
    else:  # the mean department score of each run
        points = [(run["at"][:10], round(sum(d["score"] for d in run["departments"].values())
                                         / len(run["departments"]), 4)) for run in trend if run.get("departments")]
    return render(request, "quality.html", session, title="数据质量 Data quality", report=report,
                  departments=departments, department=chosen, tables=tables, fields=fields,
                  dimensions=DIMENSIONS, trend=charts.line(points), runs=len(trend))
