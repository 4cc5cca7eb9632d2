"""Sign-in (an API token for a session cookie), sign-out, the start page and the static files."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from campus_kg.state import TokenRefused
from graph_api.ui.pages import PageRoute, Posted, action, home_of, render
from graph_api.ui.sessions import (LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, NotSignedIn, check_csrf,
                                   new_session_cookie, posted_form, session_of, set_cookie)

router = APIRouter(route_class=PageRoute)
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"ui.css": "text/css", "ui.js": "text/javascript"}


def _safe_next(target: str | None) -> str | None:
    """Only a page of this UI: `//evil.example` or `https://…` would send the user elsewhere."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/ui")
@router.get("/ui/")
def start(request: Request) -> Response:
    try:
        session = session_of(request)
    except NotSignedIn:
        return RedirectResponse("/ui/login", status.HTTP_303_SEE_OTHER)
    return RedirectResponse(home_of(session.principal.role), status.HTTP_303_SEE_OTHER)


def _login_page(request: Request, next_page: str | None, error: str | None = None, status_code: int = 200):
    # Double-submit: the form's token must equal this HttpOnly, SameSite=Strict cookie's.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status_code=status_code, title="登录 Sign in",
                      login_csrf=token, next_page=_safe_next(next_page) or "", error=error)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600, path="/ui/login")
    return response


@router.get("/ui/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 — the query's name
    return _login_page(request, next)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await posted_form(request)
    check_csrf(request, form, None)
    try:
        principal = await run_in_threadpool(request.app.state.state_store.verify, form.get("token", "").strip())
    except TokenRefused as refused:
        return _login_page(request, form.get("next"), f"令牌无效 / token refused: {refused}",
                           status.HTTP_401_UNAUTHORIZED)
    target = _safe_next(form.get("next")) or home_of(principal.role)
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    set_cookie(response, request, SESSION_COOKIE, new_session_cookie(request.app.state.settings, principal),
               max_age=SESSION_SECONDS)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
    return response


@router.post("/ui/logout")
def logout(posted: Posted = action()) -> Response:
    response = RedirectResponse("/ui/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


def _static(name: str):
    def serve() -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=3600"})
    return serve


for _name in STATIC_FILES:  # exact paths: the request guard lets exact UI paths through (graph_api.ui.PATHS)
    router.add_api_route(f"/ui/static/{_name}", _static(_name), methods=["GET"])
