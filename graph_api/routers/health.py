"""Liveness: no personal data, so no token."""

from __future__ import annotations

from fastapi import APIRouter

from graph_api.deps import GraphDep
from graph_api.models import Health

router = APIRouter(tags=["health 运行状态"])


@router.get("/health", response_model=Health, summary="服务状态 / Service status and the graph build served")
def health(graph: GraphDep) -> Health:
    return Health(status="ok", graph_build=graph.build_id)
