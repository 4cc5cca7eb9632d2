"""Steward workbench /ui/review and correction approvals /ui/corrections.

The queue, the item and the decisions are the API's functions (graph_api.routers.review): same order
by priority, same access-log entry for the records shown, same decision log, audit trail and apply
job. The page adds a filter by reason, the waterfall chart and the keyboard."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from graph_api.models import CorrectionDecision, Judgement
from graph_api.routers import review
from graph_api.ui import charts
from graph_api.ui.pages import PageRoute, Posted, action, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)
QUEUE_SHOWN = 200  # items listed on the page; the filters narrow the rest down
FILTERS = ("entity_type", "department", "reason")
JUDGEMENTS = (("same", "是同一实体", "Same", "s"), ("not_same", "不是同一实体", "Not same", "n"),
              ("unsure", "不确定", "Unsure", "u"))


def _queue(request: Request, principal, item_status: str, page_size: int, **filters):
    app = request.app
    return review.review_queue(principal, app.state.state_store, app.state.workspace,
                               entity_type=filters.get("entity_type"), min_score=0.0, max_score=1.0,
                               department=filters.get("department"), item_status=item_status, page=1,
                               page_size=page_size)


def waterfall_of(detail) -> charts.Markup:
    steps = [(c.comparison, c.match_weight) for c in detail.comparisons if c.match_weight is not None]
    total = detail.item.match_weight
    prior = None if total is None or not steps else total - sum(w for _, w in steps)
    return charts.waterfall(steps, total, prior)


def side_by_side(detail) -> list[dict]:
    """One row per property either record holds: both values, and whether they differ."""
    sides = [r.values for r in detail.records] + [{}, {}]
    names = list(dict.fromkeys([*sides[0], *sides[1]]))
    return [{"property": n, "a": sides[0].get(n), "b": sides[1].get(n),
             "differs": sides[0].get(n) != sides[1].get(n)} for n in names]


@router.get("/ui/review")
def workbench(request: Request, session: Session = page("review"), item: str | None = None,
              entity_type: str | None = None, department: str | None = None, reason: str | None = None,
              done: str | None = None) -> Response:
    principal = session.principal
    filters = {k: v for k, v in {"entity_type": entity_type, "department": department, "reason": reason}.items() if v}
    everything = _queue(request, principal, "all", 500)
    options = {"entity_type": sorted({i.entity_type for i in everything.items}),
               "department": sorted({d for i in everything.items for d in i.departments}),
               "reason": sorted({i.reason for i in everything.items if i.reason})}
    open_items = _queue(request, principal, "open", 500, **filters).items
    if reason:
        open_items = [i for i in open_items if i.reason == reason]
    decided = _queue(request, principal, "decided", 1).total
    chosen = item or (open_items[0].item_id if open_items else None)
    detail = None
    if chosen:
        app = request.app
        detail = review.review_item(chosen, principal, app.state.graph, app.state.state_store, app.state.workspace)
    ids = [i.item_id for i in open_items]
    at = ids.index(chosen) if chosen in ids else -1
    neighbours = {"next": ids[at + 1] if 0 <= at < len(ids) - 1 else None,  # keys J and K walk the queue
                  "previous": ids[at - 1] if at > 0 else None}
    return render(request, "review.html", session, title="管理员工作台 Steward workbench", items=open_items[:QUEUE_SHOWN],
                  neighbours=neighbours,
                  open_total=len(open_items), decided=decided, all_total=everything.total, options=options,
                  filters=filters, detail=detail, rows=side_by_side(detail) if detail else [],
                  chart=waterfall_of(detail) if detail else None, judgements=JUDGEMENTS, done=done,
                  query=urlencode(filters), is_pair=bool(detail and len(detail.records) == 2))


@router.post("/ui/review/decision")
def decide(request: Request, posted: Posted = action("review")) -> Response:
    form, app = posted.form, request.app
    item_id = form.get("item_id", "")
    if not item_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "item_id is required")
    body = Judgement(judgement=form.get("judgement", ""), reason=form.get("reason", ""))
    review.decide(item_id, body, posted.session.principal, app.state.graph, app.state.state_store,
                  app.state.workspace, app.state.applier)
    back = {k: form[k] for k in FILTERS if form.get(k)}
    return RedirectResponse(f"/ui/review?{urlencode({**back, 'done': item_id})}", status.HTTP_303_SEE_OTHER)


@router.get("/ui/corrections")
def corrections_page(request: Request, session: Session = page("corrections.review"),
                     status_filter: str = Query("open", alias="status", pattern="^(open|approved|refused|all)$")
                     ) -> Response:
    requests = review.corrections(session.principal, request.app.state.state_store, status_filter)
    return render(request, "corrections.html", session, title="更正审批 Correction requests", requests=requests,
                  status_filter=status_filter, done=request.query_params.get("done"))


@router.post("/ui/corrections/decision")
def decide_correction(request: Request, posted: Posted = action("corrections.review")) -> Response:
    form, app = posted.form, request.app
    body = CorrectionDecision(status=form.get("status", ""), note=form.get("note", ""))
    decided = review.decide_correction(form.get("request_id", ""), body, posted.session.principal,
                                       app.state.state_store, app.state.applier)
    return RedirectResponse(f"/ui/corrections?done={decided.request_id}", status.HTTP_303_SEE_OTHER)
