"""Liveness and readiness: no personal data, so no token.

`ok` means the served graph answers: the build the CURRENT pointer names is opened (leased) and a
trivial query runs on it. The query's answer is kept for a moment, per build, so /health stays
cheap under load; whether the pointer's file still exists is checked on every call (a stat).
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from graph_api.deps import GraphDep
from graph_api.models import Health
from graph_api.served_graph import ServedGraph

router = APIRouter(tags=["health 运行状态"])

CHECK_TTL_S = 1.5
PROBE = "MATCH (n:SourceSystem) RETURN count(n) AS n"


class _Probe:
    """The last check of one served graph: (build, when, problem or None)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.build: str | None = None
        self.checked_at = float("-inf")
        self.problem: str | None = None

    def check(self, graph: ServedGraph) -> tuple[str | None, str | None]:
        build = graph.build_id  # a stat of the pointer; re-read only when it changed
        with self.lock:
            if build == self.build and time.monotonic() - self.checked_at < CHECK_TTL_S:
                return build, self.problem
            self.build, self.problem = build, _problem(graph)
            self.checked_at = time.monotonic()
            return build, self.problem


_probes: weakref.WeakKeyDictionary[ServedGraph, _Probe] = weakref.WeakKeyDictionary()
_probes_lock = threading.Lock()


def _problem(graph: ServedGraph) -> str | None:
    try:
        graph.query(PROBE)
    except Exception as exc:  # whatever stops the graph answering is what /health reports
        return f"the served graph cannot be opened: {type(exc).__name__}: {exc}"
    return None


def _missing_file(graph: ServedGraph) -> str | None:
    pointer = graph.workspace.read_current_graph()
    if pointer is None:
        return "no graph has been built in this workspace yet (run `campus-kg build-graph`)"
    for key in ("path", "analyst_path"):  # the full graph and the analysts' projection of it
        if pointer.get(key) and not Path(pointer[key]).exists():
            return f"a file of the served build is missing: {pointer[key]}"
    return None


@router.get("/health", response_model=Health, summary="服务状态 / Service status and the graph build served",
            responses={503: {"description": "The served graph cannot be opened or queried, or no graph is built: "
                                            '`{"status": "unavailable", "graph_build": ..., "detail": ...}`'}})
def health(graph: GraphDep):
    with _probes_lock:
        probe = _probes.setdefault(graph, _Probe())
    problem = _missing_file(graph)
    build, queried = probe.check(graph) if problem is None else (graph.build_id, None)
    problem = problem or queried
    if problem is not None:
        return JSONResponse(status_code=503, content={"status": "unavailable", "graph_build": build,
                                                      "detail": problem})
    return Health(status="ok", graph_build=build)
