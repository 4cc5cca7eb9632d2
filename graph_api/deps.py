"""Dependencies of the routers, as Annotated aliases (FastAPI full-stack template style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from campus_kg.settings import Settings
from campus_kg.state import Principal, StateStore
from graph_api.served_graph import ServedGraph

_bearer = HTTPBearer(auto_error=False, description="An API token from `campus-kg users add`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_graph(request: Request) -> ServedGraph:
    return request.app.state.graph


def get_state(request: Request) -> StateStore:
    return request.app.state.state_store


def get_principal(
    state: Annotated[StateStore, Depends(get_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Deny by default: no token or an unknown/revoked token is 401."""
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    principal = state.authenticate(credentials.credentials)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings)]
GraphDep = Annotated[ServedGraph, Depends(get_graph)]
StateDep = Annotated[StateStore, Depends(get_state)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
