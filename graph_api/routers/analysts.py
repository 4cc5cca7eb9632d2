"""Analysts: read-only Cypher, and the saved queries in queries/*.cypher.

Every ad-hoc query runs in a Cypher worker process (graph_api.cypher_worker) on the build's analyst
projection, never in the server: a crash, a memory bomb or a runaway query costs one worker. Admission
happens on the event loop, so a query waiting for a worker holds no thread the API's own reads need:
at most `cypher_per_user_concurrency` queries per token (429), and a place in the workers' queue
(503 when none comes free in time).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request, status

from campus_kg.settings import Settings
from campus_kg.state import Principal, StateStore
from campus_kg.workspace import Workspace
from graph_api import cypher_guard
from graph_api.cypher_worker import (AnswerTooLarge, CypherWorkerPool, GraphFileUnavailable, QueryOutOfMemory,
                                     QueryRefused, QueryTimedOut, WorkerCrashed, WorkersBusy)
from graph_api.deps import ClientDep, CypherUser, SettingsDep, StateDep, WorkspaceDep
from graph_api.models import CypherRequest, CypherResult, SavedQuery, SavedQueryRequest
from graph_api.served_graph import GraphUnavailable
from ontology.masking import SEES_SENSITIVE
from queries import load_query, names, needs_entity

router = APIRouter(tags=["analysts 分析"])
PERSON_ID = re.compile(r"^P\d{8,}$")
NO_PROJECTION = ("no analyst projection for this build; rebuild with `campus-kg build-graph` "
                 "(ad-hoc Cypher runs only on the analyst projection a build writes beside the graph)")


def _persons_in(value: Any, found: set[str]) -> None:
    if isinstance(value, str) and PERSON_ID.match(value):
        found.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _persons_in(v, found)
    elif isinstance(value, list):
        for v in value:
            _persons_in(v, found)


def analyst_graph(workspace: Workspace) -> tuple[str, str]:
    """The served build's analyst projection: (path, build id); 503 when there is none."""
    pointer = workspace.read_current_graph()
    if pointer is None:
        raise GraphUnavailable("no graph has been built in this workspace yet (run `campus-kg build-graph`)")
    if not pointer.get("analyst_path"):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NO_PROJECTION)
    return pointer["analyst_path"], pointer["build_id"]


def run_cypher(pool: CypherWorkerPool, workspace: Workspace, state: StateStore, settings: Settings,
               principal: Principal, query: str, parameters: dict[str, Any], endpoint: str,
               client: str | None) -> CypherResult:
    sees = principal.role in SEES_SENSITIVE
    try:
        checked = cypher_guard.inspect(query, sees)  # the canonical text is what runs, never the caller's
    except cypher_guard.CypherRefused as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    path, build_id = analyst_graph(workspace)
    try:
        answer = pool.run(path, build_id, checked.text, parameters, max_rows=settings.cypher_max_rows)
    except QueryTimedOut as exc:
        raise HTTPException(status.HTTP_408_REQUEST_TIMEOUT, str(exc)) from None
    except QueryRefused as exc:  # a parse error, or a write the read-only database refused
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the database refused the query: {exc}") from None
    except (QueryOutOfMemory, WorkerCrashed) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except AnswerTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    except (WorkersBusy, GraphFileUnavailable) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"}) from None
    rows, masked = cypher_guard.mask_rows(answer.rows, sees)
    persons = set(checked.persons)  # a person named in the query or a parameter, or returned, was read
    _persons_in(rows, persons)
    _persons_in(parameters, persons)
    logged = logged_query(checked.text)
    for person in sorted(persons) or [None]:
        state.log_access(principal, person, endpoint, [logged], client)
    return CypherResult(columns=answer.columns, rows=rows, row_count=len(rows), truncated=answer.truncated,
                        masked=masked)


# The access log keeps what ran, not what was sent: the caller's text cut at 500 characters kept
# only a comment when the query was padded with one (`/* 600 spaces */ MATCH ... RETURN p.name`).
# The canonical text has no comments; long string literals are shortened (they cannot hide a clause)
# and the rest is kept up to LOGGED_QUERY_CHARS, head and tail.
LOGGED_QUERY_CHARS = 4000
KEPT_LITERAL_CHARS = 40
# a name in backticks, or a string literal as the canonical text writes it (only \\ and \' escaped):
# matched left to right, so a quote inside a name or a backtick inside a literal is never misread
_NAME_OR_LITERAL = re.compile(r"`[^`]*`|'((?:[^'\\]|\\.)*)'")


def _shortened(match: re.Match) -> str:
    body = match.group(1)
    if body is None or len(body) <= KEPT_LITERAL_CHARS:
        return match.group(0)
    kept = body[:KEPT_LITERAL_CHARS]
    if re.search(r"(?<!\\)(?:\\\\)*\\$", kept):  # never end on half an escape
        kept = kept[:-1]
    return f"'{kept}…'"


def logged_query(canonical: str) -> str:
    """The canonical text of a query as the access log keeps it."""
    text = _NAME_OR_LITERAL.sub(_shortened, canonical)
    if len(text) <= LOGGED_QUERY_CHARS:
        return text
    half = LOGGED_QUERY_CHARS // 2
    return f"{text[:half]} …({len(text) - 2 * half} characters)… {text[-half:]}"


class _Admission:
    """Per-token limits and the queue for a worker, kept on the event loop (no locks needed there)."""

    def __init__(self, settings: Settings):
        self.per_user = settings.cypher_per_user_concurrency
        # long enough for the queries ahead to run to their timeout (and a worker to start) twice over
        self.wait_s = 2 * (settings.query_timeout_ms / 1000 + 5)
        self.running: Counter[str] = Counter()
        self.workers = anyio.CapacityLimiter(settings.cypher_workers)


def _admission(request: Request) -> _Admission:
    admission = getattr(request.app.state, "cypher_admission", None)
    if admission is None:  # made on the event loop, where anyio's limiter must be made; no race there
        admission = request.app.state.cypher_admission = _Admission(request.app.state.settings)
    return admission


async def _in_worker(request: Request, principal: Principal, run) -> CypherResult:
    admission = _admission(request)
    if admission.running[principal.token_id] >= admission.per_user:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"at most {admission.per_user} Cypher queries per user at a time "
                            "(cypher_per_user_concurrency); wait for one to finish", headers={"Retry-After": "1"})
    admission.running[principal.token_id] += 1
    try:
        with anyio.move_on_after(admission.wait_s) as waiting:
            await admission.workers.acquire()
        if waiting.cancelled_caught:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "all Cypher workers are busy; try again shortly",
                                headers={"Retry-After": "2"})
        try:
            return await anyio.to_thread.run_sync(run)
        finally:
            admission.workers.release()
    finally:
        admission.running[principal.token_id] -= 1
        if not admission.running[principal.token_id]:
            del admission.running[principal.token_id]


@router.post("/cypher", response_model=CypherResult,
             summary="只读 Cypher 查询 / Read-only Cypher, with a timeout, a row cap and masking")
async def cypher(body: CypherRequest, request: Request, principal: CypherUser, workspace: WorkspaceDep,
                 state: StateDep, settings: SettingsDep, client: ClientDep) -> CypherResult:
    """The database refuses every write (read-only connection or read transaction). One statement per
    request; at most `cypher_max_rows` rows (`truncated` says when more existed); queries past
    `query_timeout_ms` are stopped (408). Sensitive values are masked, and queries naming them refused,
    for roles that may not see them. Every query is in the access log, with each person ID it was asked
    about or returned."""
    return await _in_worker(request, principal, partial(
        run_cypher, request.app.state.cypher_pool, workspace, state, settings, principal, body.query, body.parameters,
        "POST /cypher", client))


def _saved(name: str) -> SavedQuery:
    text = load_query(name)
    description = " ".join(line.lstrip("/ ").strip() for line in text.splitlines() if line.startswith("//"))
    return SavedQuery(name=name, description=description, text=text, needs_entity=needs_entity(name),
                      parameters=sorted(set(re.findall(r"\$(\w+)", text))))


@router.get("/queries", response_model=list[SavedQuery], summary="保存的查询 / Saved queries")
def list_queries(principal: CypherUser) -> list[SavedQuery]:
    return [_saved(n) for n in names()]


@router.post("/queries/{name}", response_model=CypherResult, summary="运行保存的查询 / Run a saved query")
async def run_saved(name: str, body: SavedQueryRequest, request: Request, principal: CypherUser,
                    workspace: WorkspaceDep, state: StateDep, settings: SettingsDep, client: ClientDep) -> CypherResult:
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
    return await _in_worker(request, principal, partial(
        run_cypher, request.app.state.cypher_pool, workspace, state, settings, principal, text, body.parameters,
        f"POST /queries/{name}", client))
