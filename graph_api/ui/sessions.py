"""Signing in to the web pages: an API token exchanged for a session cookie, and CSRF tokens.

The cookie is signed, not stored: `<token_id>.<expires>.<nonce>.<signature>`, HMAC-SHA256 under a
key derived from `token_secret`. Every request looks the token up again by its ID, so a revoked or
expired token ends its sessions at once, and the role is the token's, as in the API. The cookie is
HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it).

CSRF: every form carries a token bound to the session (an HMAC of the session cookie), checked on
every POST. Before sign-in there is no session, so the sign-in form uses a double-submit cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import NamedTuple
from urllib.parse import parse_qs

from fastapi import HTTPException, Request, status

from campus_kg.settings import Settings
from campus_kg.state import Principal

SESSION_COOKIE = "ckg_session"
LOGIN_CSRF_COOKIE = "ckg_login_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 8 * 3600  # a working day: the browser is signed out after it, the token lives on
FORM_TYPE = "application/x-www-form-urlencoded"


class NotSignedIn(Exception):
    """No valid session: the page answers with the sign-in page (graph_api.ui.pages.PageRoute)."""


class Session(NamedTuple):
    principal: Principal
    cookie: str  # the cookie's value, which the CSRF token is bound to


def _sign(settings: Settings, payload: str) -> str:
    # A key derived from token_secret, so a session signature is never a token hash made with it.
    key = hmac.new(settings.token_secret.get_secret_value().encode("utf-8"), b"campus-kg ui session v1",
                   hashlib.sha256).digest()
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def new_session_cookie(settings: Settings, principal: Principal, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_SECONDS)
    payload = f"{principal.token_id}.{expires}.{secrets.token_hex(8)}"
    return f"{payload}.{_sign(settings, payload)}"


def session_of(request: Request) -> Session:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    parts = cookie.split(".")
    if len(parts) != 4:
        raise NotSignedIn
    token_id, expires, _, signature = parts
    if not hmac.compare_digest(signature, _sign(request.app.state.settings, ".".join(parts[:3]))):
        raise NotSignedIn
    if not expires.isdigit() or int(expires) <= time.time():
        raise NotSignedIn
    principal = request.app.state.state_store.principal_by_token_id(token_id)
    if principal is None:
        raise NotSignedIn
    return Session(principal, cookie)


def csrf_token(request: Request, session: Session) -> str:
    """The token the page's forms carry, bound to the session."""
    return _sign(request.app.state.settings, f"csrf:{session.cookie}")


async def posted_form(request: Request) -> dict[str, str]:
    """The urlencoded body of a POST (the pages' forms send nothing else). No multipart parser is
    needed for that: the request guard has already bounded the body's size."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"表单须为 {FORM_TYPE} / forms are {FORM_TYPE}")
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def check_csrf(request: Request, form: dict[str, str], session: Session | None) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "") if session is None else csrf_token(request, session)
    sent = form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF 校验失败，请刷新页面重试 / CSRF check failed: reload the page")


def set_cookie(response, request: Request, name: str, value: str, max_age: int | None, path: str = "/ui") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
