"""图查询 /ui/cypher: for analysts and auditors, an editor with the saved queries, the results as a
table and a small graph of the nodes and relationships returned.

POST /cypher answers (graph_api.routers.analysts): the same parser and allow-list, worker process,
row cap, timeout, masking and access-log entry."""

from __future__ import annotations

import json
import math

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from graph_api.models import CypherRequest
from graph_api.routers import analysts
from graph_api.ui.pages import PageRoute, Posted, action, client_of, page, render
from graph_api.ui.sessions import Session

router = APIRouter(route_class=PageRoute)
EXAMPLE = "MATCH (p:Person)-[r:MEMBER_OF]->(o:Organisation)\nRETURN p, r, o\nLIMIT 12"
GRAPH_NODES = 40  # nodes drawn at most: the graph view is a glance, the table is the answer
COLOURS = ("#1f5fa8", "#2e8540", "#c58a00", "#8e44ad", "#c0392b", "#16a085")


def _is_node(value) -> bool:
    return isinstance(value, dict) and "_LABEL" in value and "id" in value


def _is_edge(value) -> bool:
    return isinstance(value, dict) and "_LABEL" in value and "id" not in value


def graph_view(columns: list[str], rows: list[dict]) -> Markup | None:
    """Nodes (values with an `id` and a label) on a circle; a relationship joins the nearest node
    columns either side of it in the row (the order `RETURN a, r, b` gives)."""
    nodes: dict[str, dict] = {}
    edges: set[tuple[str, str, str]] = set()
    for row in rows:
        values = [row.get(c) for c in columns]
        for i, value in enumerate(values):
            if _is_node(value) and len(nodes) < GRAPH_NODES:
                nodes.setdefault(str(value["id"]), value)
            elif _is_edge(value):
                before = next((v for v in reversed(values[:i]) if _is_node(v)), None)
                after = next((v for v in values[i + 1:] if _is_node(v)), None)
                if before and after:
                    edges.add((str(before["id"]), str(after["id"]), value["_LABEL"]))
    if not nodes:
        return None
    size, radius = 520, 200
    ids = list(nodes)
    place = {n: (size / 2 + radius * math.cos(2 * math.pi * i / len(ids)),
                 size / 2 + radius * math.sin(2 * math.pi * i / len(ids))) for i, n in enumerate(ids)}
    labels = sorted({v["_LABEL"] for v in nodes.values()})
    parts = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
             f'viewBox="0 0 {size} {size}" role="img" aria-label="graph of the answer">']
    for a, b, label in sorted(edges):
        if a in place and b in place:
            (x1, y1), (x2, y2) = place[a], place[b]
            parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#999">'
                         f'<title>{escape(label)}</title></line>')
    for n in ids:
        x, y = place[n]
        colour = COLOURS[labels.index(nodes[n]["_LABEL"]) % len(COLOURS)]
        caption = nodes[n].get("name") or nodes[n].get("title") or n
        parts.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="7" fill="{colour}"><title>{escape(nodes[n]["_LABEL"])} '
                     f'{escape(n)}</title></circle><text x="{x + 9:.0f}" y="{y + 4:.0f}" font-size="10">'
                     f'{escape(str(caption)[:14])}</text>')
    for i, label in enumerate(labels):
        parts.append(f'<circle cx="12" cy="{14 + i * 16}" r="5" fill="{COLOURS[i % len(COLOURS)]}"/>'
                     f'<text x="22" y="{18 + i * 16}" font-size="11">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _cell(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def _page(request: Request, session: Session, query: str, result=None, error: str | None = None,
          status_code: int = 200) -> Response:
    saved = analysts.list_queries(session.principal)
    rows = [[_cell(r.get(c)) for c in result.columns] for r in result.rows] if result else []
    return render(request, "cypher.html", session, status_code=status_code, title="图查询 Cypher", query=query,
                  saved=saved, result=result, rows=rows, error=error,
                  graph=graph_view(result.columns, result.rows) if result else None)


@router.get("/ui/cypher")
def cypher_page(request: Request, session: Session = page("cypher"), saved: str | None = None) -> Response:
    chosen = next((q for q in analysts.list_queries(session.principal) if q.name == saved), None)
    return _page(request, session, chosen.text if chosen else EXAMPLE)


@router.post("/ui/cypher")
async def run_query(request: Request, posted: Posted = action("cypher")) -> Response:
    app, query = request.app, posted.form.get("query", "")
    try:
        parameters = json.loads(posted.form.get("parameters") or "{}")
    except ValueError as exc:
        return _page(request, posted.session, query, error=f"参数不是 JSON / parameters: {exc}", status_code=422)
    try:
        body = CypherRequest(query=query, parameters=parameters if isinstance(parameters, dict) else {})
        result = await analysts.cypher(body, request, posted.session.principal, app.state.workspace,
                                       app.state.state_store, app.state.settings, client_of(request))
    except HTTPException as exc:  # refused, timed out, too large: said beside the query, which stays
        return _page(request, posted.session, query, error=str(exc.detail), status_code=exc.status_code)
    return _page(request, posted.session, query, result)
