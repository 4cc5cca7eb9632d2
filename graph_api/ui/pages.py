"""What every page shares: the route class that turns refusals into pages, the dependencies that
check the session, its role and the CSRF token, and rendering with the navigation the role may use."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph_api import authz
from graph_api.served_graph import GraphUnavailable
from graph_api.ui.sessions import CSRF_FIELD, NotSignedIn, Session, check_csrf, csrf_token, posted_form, session_of

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

# No script, style, font or image from anywhere but this server: the campus intranet has no internet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold personal data: not kept in the browser's cache
}


class NavItem(NamedTuple):
    path: str
    zh: str
    en: str
    permissions: tuple[str, ...]  # any of them opens the page (graph_api.authz.PERMISSIONS)


NAV = (
    NavItem("/ui/me", "个人数据中心", "My data", ("me",)),
    NavItem("/ui/review", "管理员工作台", "Review", ("review",)),
    NavItem("/ui/entities", "合并拆分", "Merge / split", ("entities.edit",)),
    NavItem("/ui/corrections", "更正审批", "Corrections", ("corrections.review",)),
    NavItem("/ui/forms", "一表通", "Forms", ("forms.prefill",)),
    NavItem("/ui/quality", "数据质量", "Quality", ("quality",)),
    NavItem("/ui/portraits", "画像", "Portraits", ("portraits.person", "portraits.research")),
    NavItem("/ui/lineage", "数据血缘", "Lineage", ("lineage",)),
    NavItem("/ui/cypher", "图查询", "Cypher", ("cypher",)),
)


def may(role: str, permissions: tuple[str, ...]) -> bool:
    return any(role in authz.PERMISSIONS[p] for p in permissions)


def home_of(role: str) -> str:
    """The first page the role may open (an admin lands on quality)."""
    return next((n.path for n in NAV if may(role, n.permissions)), "/ui/login")


class PageRoute(APIRoute):
    """A page's refusals are pages too: no session → the sign-in page; 403/404/409/422 → an error page
    saying why in the same words the API uses. Every answer carries the security headers."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except NotSignedIn:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status.HTTP_303_SEE_OTHER)
            except StarletteHTTPException as exc:  # FastAPI's HTTPException is one too
                response = error_page(request, exc.status_code, str(exc.detail))
            except GraphUnavailable as exc:
                response = error_page(request, status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
            except (RequestValidationError, ValidationError) as exc:
                errors = exc.errors()
                detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors)
                response = error_page(request, status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
            response.headers.update(SECURITY_HEADERS)
            return response

        return page_handler


def error_page(request: Request, status_code: int, detail: str) -> HTMLResponse:
    titles = {403: ("无权访问", "Forbidden"), 404: ("未找到", "Not found"), 409: ("冲突", "Conflict"),
              415: ("格式不支持", "Unsupported"), 422: ("输入有误", "Invalid input"),
              503: ("暂不可用", "Unavailable")}
    zh, en = titles.get(status_code, ("出错了", "Error"))
    session = getattr(request.state, "session", None)
    return render(request, "error.html", session, status_code=status_code, title=f"{zh} {en}",
                  status=status_code, detail=detail)


def render(request: Request, template_file: str, session: Session | None, status_code: int = 200,
           **context) -> HTMLResponse:
    principal = session.principal if session else None
    nav = [n for n in NAV if principal and may(principal.role, n.permissions)]
    return templates.TemplateResponse(request, template_file, {
        "principal": principal, "nav": nav, "csrf": csrf_token(request, session) if session else "",
        "csrf_field": CSRF_FIELD, "path": request.url.path, **context}, status_code=status_code)


def page(*permissions: str):
    """A dependency: the signed-in caller's session when their role holds any of `permissions`."""
    for p in permissions:
        if p not in authz.PERMISSIONS:
            raise KeyError(p)

    async def dependency(request: Request) -> Session:
        session = await run_in_threadpool(session_of, request)
        request.state.session = session
        if permissions and not may(session.principal.role, permissions):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"角色 {session.principal.role!r} 无权打开此页 / role {session.principal.role!r} "
                                "may not open this page")
        return session

    return Depends(dependency)


class Posted(NamedTuple):
    session: Session
    form: dict[str, str]


def action(*permissions: str):
    """A dependency for a form's POST: the session as `page` checks it, the form, its CSRF token checked."""
    check_page = page(*permissions).dependency

    async def dependency(request: Request) -> Posted:
        session = await check_page(request)
        form = await posted_form(request)
        check_csrf(request, form, session)
        return Posted(session, form)

    return Depends(dependency)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None
