"""The web pages' sessions over real HTTP, without a browser or a graph: what gets a page and what
is sent back to the sign-in page. (tests/test_ui_browser.py drives the pages themselves.)"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from campus_kg.settings import Settings
from campus_kg.state import Principal
from graph_api import ui
from graph_api.ui.sessions import SESSION_COOKIE, SESSION_SECONDS, new_session_cookie

OPEN_PATHS = {"/ui", "/ui/", "/ui/login", "/ui/static/ui.css", "/ui/static/ui.js"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from graph_api.app import create_app
    from tests.http_server import serve

    app = create_app(Settings(workspace=tmp_path_factory.mktemp("ui-sessions")))
    with serve(app) as url:
        yield url, app


def _login_csrf(client: httpx.Client) -> str:
    page = client.get("/ui/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_every_page_without_a_session_goes_to_sign_in(server):
    url, app = server
    _, token = app.state.state_store.add_user("ui-sessions-steward", "steward")
    closed = sorted(ui.PATHS - OPEN_PATHS)
    assert "/ui/me" in closed and "/ui/review/decision" in closed
    with httpx.Client(base_url=url) as client:
        for path in closed:
            for method in ("GET", "POST"):
                r = client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                   data={"x": "1"} if method == "POST" else None)
                if r.status_code == 405:
                    continue
                # a bearer token is not a session: pages answer only to the cookie
                assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next="), (method, path)
                assert "default-src 'self'" in r.headers["content-security-policy"]


def test_a_forged_expired_or_revoked_session_is_no_session(server):
    url, app = server
    state, settings = app.state.state_store, app.state.settings
    token_id, _ = state.add_user("ui-sessions-revoked", "steward")
    who = Principal(token_id, "ui-sessions-revoked", "steward", None)
    good = new_session_cookie(settings, who)
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    expired = new_session_cookie(settings, who, now=time.time() - SESSION_SECONDS - 1)
    other_role = good.replace(token_id, "00000000", 1)  # another token's ID under this signature
    for cookie, opens in ((good, True), (forged, False), (expired, False), (other_role, False)):
        r = httpx.get(f"{url}/ui/corrections", cookies={SESSION_COOKIE: cookie})
        assert (r.status_code != 303) == opens, cookie
    state.revoke(token_id)
    assert httpx.get(f"{url}/ui/corrections", cookies={SESSION_COOKIE: good}).status_code == 303


def test_sign_in_sets_the_cookie_and_returns_only_to_a_ui_page(server):
    url, app = server
    _, token = app.state.state_store.add_user("ui-sessions-auditor", "auditor")
    for next_page, lands in (("/ui/cypher", "/ui/cypher"), ("//evil.example/ui/", "/ui/quality"),
                             ("https://evil.example/", "/ui/quality")):
        with httpx.Client(base_url=url) as client:
            r = client.post("/ui/login", data={"token": token, "csrf_token": _login_csrf(client), "next": next_page})
            assert r.status_code == 303 and r.headers["location"] == lands, next_page
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
            assert token not in cookie
    with httpx.Client(base_url=url) as client:
        r = client.post("/ui/login", data={"token": token + "x", "csrf_token": _login_csrf(client)})
        assert r.status_code == 401 and SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_no_graph_yet_is_a_page_saying_so(server):
    url, app = server
    _, token = app.state.state_store.add_user("ui-sessions-self", "self", "P00000001")
    with httpx.Client(base_url=url) as client:
        client.post("/ui/login", data={"token": token, "csrf_token": _login_csrf(client)})
        r = client.get("/ui/me")
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert "暂不可用" in r.text and 'id="error-detail"' in r.text
