"""Dependencies of the routers, as Annotated aliases (FastAPI full-stack template style).

The ones that only read app state are `async def`: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per dependency per request. `get_principal` takes the caller the request
guard (graph_api.request_guard) authenticated before the body was read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from campus_kg.settings import Settings
from campus_kg.state import Principal, StateStore, TokenRefused
from campus_kg.workspace import Workspace
from graph_api import authz
from graph_api.applier import Applier
from graph_api.request_guard import PRINCIPAL_SCOPE_KEY
from graph_api.served_graph import ServedGraph

_bearer = HTTPBearer(auto_error=False, description="An API token from `campus-kg users add`")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_workspace(request: Request) -> Workspace:
    return request.app.state.workspace


async def get_graph(request: Request) -> ServedGraph:
    return request.app.state.graph


async def get_state(request: Request) -> StateStore:
    return request.app.state.state_store


async def get_applier(request: Request) -> Applier:
    return request.app.state.applier


async def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


async def get_principal(
    request: Request,
    state: Annotated[StateStore, Depends(get_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Deny by default: no token or an unknown, revoked or expired token is 401. The request guard
    has normally answered that already; checked here again for a route it was told is public."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is not None:
        return principal
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return await run_in_threadpool(state.verify, credentials.credentials)
    except TokenRefused as refused:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(refused),
                            headers={"WWW-Authenticate": "Bearer"}) from None


def allowed(permission: str):
    """A dependency: the caller, if their role holds `permission` (authz.PERMISSIONS); else 403."""
    if permission not in authz.PERMISSIONS:
        raise KeyError(permission)

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        return authz.check(principal, permission)

    return Depends(dependency)


SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
GraphDep = Annotated[ServedGraph, Depends(get_graph)]
StateDep = Annotated[StateStore, Depends(get_state)]
ApplierDep = Annotated[Applier, Depends(get_applier)]
ClientDep = Annotated[str | None, Depends(client_of)]
PersonReader = Annotated[Principal, allowed("person.read")]
Me = Annotated[Principal, allowed("me")]
FormFiller = Annotated[Principal, allowed("forms.prefill")]
Steward = Annotated[Principal, allowed("review")]
EntityEditor = Annotated[Principal, allowed("entities.edit")]
CorrectionReviewer = Annotated[Principal, allowed("corrections.review")]
JobReader = Annotated[Principal, allowed("jobs.read")]
CypherUser = Annotated[Principal, allowed("cypher")]
LineageReader = Annotated[Principal, allowed("lineage")]
HistoryReader = Annotated[Principal, allowed("history")]
AccessLogReader = Annotated[Principal, allowed("access_log")]
AuditTrailReader = Annotated[Principal, allowed("audit_trail")]
PortraitReader = Annotated[Principal, allowed("portraits.person")]
ResearchPortraitReader = Annotated[Principal, allowed("portraits.research")]
QualityReader = Annotated[Principal, allowed("quality")]
