"""Analysts: read-only Cypher, and the saved queries in queries/*.cypher."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, status

from campus_kg.settings import Settings
from campus_kg.state import Principal, StateStore
from graph_api import cypher_guard
from graph_api.deps import ClientDep, CypherUser, GraphDep, SettingsDep, StateDep
from graph_api.models import CypherRequest, CypherResult, SavedQuery, SavedQueryRequest
from graph_api.served_graph import ServedGraph
from graph_api.store import GraphStoreError, QueryTimeout
from ontology.masking import SEES_SENSITIVE
from queries import load_query, names, needs_entity

router = APIRouter(tags=["analysts 分析"])
PERSON_ID = re.compile(r"^P\d{8,}$")


def _persons_in(value: Any, found: set[str]) -> None:
    if isinstance(value, str) and PERSON_ID.match(value):
        found.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _persons_in(v, found)
    elif isinstance(value, list):
        for v in value:
            _persons_in(v, found)


def run_cypher(graph: ServedGraph, state: StateStore, settings: Settings, principal: Principal, query: str,
               parameters: dict[str, Any], endpoint: str, client: str | None) -> CypherResult:
    sees = principal.role in SEES_SENSITIVE
    try:
        cypher_guard.check(query, sees)
    except cypher_guard.CypherRefused as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    cap = settings.cypher_max_rows
    try:
        rows = graph.query(query, parameters, max_rows=cap + 1)
    except QueryTimeout:
        raise HTTPException(status.HTTP_408_REQUEST_TIMEOUT,
                            f"the query ran past {settings.query_timeout_ms} ms and was stopped") from None
    except (GraphStoreError, RuntimeError) as exc:  # a parse error, or a write the database refused
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the database refused the query: {exc}") from None
    truncated = len(rows) > cap
    rows, masked = cypher_guard.mask_rows(rows[:cap], sees)
    persons: set[str] = set()  # a person asked about (a parameter) or returned (a value) was read
    _persons_in(rows, persons)
    _persons_in(parameters, persons)
    columns = list(rows[0]) if rows else []
    for person in sorted(persons) or [None]:
        state.log_access(principal, person, endpoint, [query[:500]], client)
    return CypherResult(columns=columns, rows=rows, row_count=len(rows), truncated=truncated, masked=masked)


@router.post("/cypher", response_model=CypherResult,
             summary="只读 Cypher 查询 / Read-only Cypher, with a timeout, a row cap and masking")
def cypher(body: CypherRequest, principal: CypherUser, graph: GraphDep, state: StateDep, settings: SettingsDep,
           client: ClientDep) -> CypherResult:
    """The database refuses every write (read-only connection or read transaction). One statement per
    request; at most `cypher_max_rows` rows (`truncated` says when more existed); queries past
    `query_timeout_ms` are stopped (408). Sensitive values are masked, and queries naming them refused,
    for roles that may not see them. Every query is in the access log, with each person ID it was asked
    about or returned."""
    return run_cypher(graph, state, settings, principal, body.query, body.parameters, "POST /cypher", client)


def _saved(name: str) -> SavedQuery:
    text = load_query(name)
    description = " ".join(line.lstrip("/ ").strip() for line in text.splitlines() if line.startswith("//"))
    return SavedQuery(name=name, description=description, text=text, needs_entity=needs_entity(name),
                      parameters=sorted(set(re.findall(r"\$(\w+)", text))))


@router.get("/queries", response_model=list[SavedQuery], summary="保存的查询 / Saved queries")
def list_queries(principal: CypherUser) -> list[SavedQuery]:
    return [_saved(n) for n in names()]


@router.post("/queries/{name}", response_model=CypherResult, summary="运行保存的查询 / Run a saved query")
def run_saved(name: str, body: SavedQueryRequest, principal: CypherUser, graph: GraphDep, state: StateDep,
              settings: SettingsDep, client: ClientDep) -> CypherResult:
    if name not in names():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no saved query {name!r}")
    missing = set(_saved(name).parameters) - set(body.parameters)
    if missing:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"missing parameters: {', '.join(sorted(missing))}")
    if needs_entity(name) and body.entity is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name} needs `entity`: the master class")
    try:
        text = load_query(name, body.entity if needs_entity(name) else None)
    except KeyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return run_cypher(graph, state, settings, principal, text, body.parameters, f"POST /queries/{name}", client)
