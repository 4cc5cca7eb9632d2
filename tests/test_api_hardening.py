"""The API under hostile callers, over real HTTP: body limits and the token checked before the body
is read, expiring tokens, unencodable text and out-of-range dates, ID probing by `self` tokens, a
forged X-Forwarded-For, racing decisions, unhandled errors and formula cells in the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from campus_kg.settings import Settings
from campus_kg.state import StateStore
from tests.http_server import serve

CYPHER = {"query": "MATCH (o:Organisation) RETURN o.name AS name LIMIT 1"}


# ---- helpers ------------------------------------------------------------------------------------
def _raw(url: str, head: str, chunks=(), timeout: float = 10) -> tuple[int, dict, bytes, int]:
    """Sends a request head, then body chunks until the server answers; (status, headers, body,
    body bytes sent). A server that waited for the body would time out here."""
    target = httpx.URL(url)
    with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        sent = 0
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: stop sending
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        data = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data:
                head_bytes, _, body = data.partition(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head_bytes.decode("latin-1").split("\r\n")[1:])
                if len(body) >= int(headers.get("content-length", 10**9)):
                    break
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, sent


def _chunks(total: int, size: int = 65_536):
    piece = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _post_head(path: str, headers: dict[str, str]) -> str:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")


def _json_bytes(body: dict) -> bytes:
    """JSON as a client may send it: a lone surrogate written as its `\\ud800` escape."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


# ---- 1. body limit, token before body ------------------------------------------------------------
def test_a_declared_oversize_body_is_refused_unread(api):
    status, _, body, _ = _raw(api.url, _post_head("/cypher", {"Content-Length": str(200 * 2**20)}))
    assert status == 413 and "max_request_bytes" in json.loads(body)["detail"]
    # with a valid token too: the size comes first
    token = api.headers("analyst")["Authorization"]
    assert _raw(api.url, _post_head("/cypher", {"Content-Length": str(2**20 + 1), "Authorization": token}))[0] == 413


def test_no_token_is_refused_before_the_body_is_read(api):
    # 1000 bytes declared, none sent: an answer at all proves the body was not waited for
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        status, answer_headers, body, _ = _raw(api.url, _post_head("/cypher", {"Content-Length": "1000", **headers}))
        assert status == 401 and answer_headers["www-authenticate"] == "Bearer", (headers, body)


def test_a_chunked_body_is_counted_and_cut_at_the_limit(api):
    token = api.headers("analyst")["Authorization"]
    head = _post_head("/cypher", {"Transfer-Encoding": "chunked", "Authorization": token})
    status, _, body, sent = _raw(api.url, head, _chunks(200 * 2**20), timeout=30)
    assert status == 413 and "max_request_bytes" in json.loads(body)["detail"]
    assert sent < 64 * 2**20, f"the server let {sent} bytes of a 200 MiB body in before answering"
    # without a token, a chunked body is not read at all
    status, _, _, _ = _raw(api.url, _post_head("/cypher", {"Transfer-Encoding": "chunked"}), _chunks(4 * 2**20))
    assert status == 401


def test_valid_requests_pass_the_guard(api):
    analyst = api.headers("analyst")

    def small_chunks():
        payload = json.dumps(CYPHER).encode()
        yield payload[:10]
        yield payload[10:]

    chunked = httpx.post(f"{api.url}/cypher", content=small_chunks(),
                         headers={**analyst, "Content-Type": "application/json"})
    assert chunked.status_code == 200 and chunked.json()["row_count"] == 1
    assert httpx.post(f"{api.url}/cypher", json=CYPHER, headers=analyst).status_code == 200
    for public in ("/health", "/openapi.json", "/docs"):
        assert httpx.get(f"{api.url}{public}").status_code == 200, public
    assert httpx.get(f"{api.url}/no-such-route").status_code == 401  # deny by default, even a 404
    assert httpx.get(f"{api.url}/no-such-route", headers=analyst).status_code == 404


# ---- 2. token expiry -----------------------------------------------------------------------------
def test_an_expired_token_is_401_token_expired(api):
    headers = api.headers("steward")
    token_id = headers["Authorization"].split("_")[1]
    assert httpx.get(f"{api.url}/corrections", headers=headers).status_code == 200
    with api.state.engine.begin() as conn:  # the clock moved on: its expiry is in the past
        conn.execute(text("UPDATE api_token SET expires_at = :past WHERE token_id = :id"),
                     {"past": dt.datetime(2020, 1, 1), "id": token_id})
    r = httpx.get(f"{api.url}/corrections", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "token expired"
    assert r.headers["www-authenticate"] == "Bearer"


def test_new_tokens_expire_after_the_setting_or_the_option(tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}", "k" * 40, token_ttl_days=30)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ids = {days: state.add_user(f"t{days}", "steward", expires_days=days)[0] for days in (None, 7, 0)}
    expiry = {u["token_id"]: u["expires_at"] for u in state.list_users()}
    assert dt.timedelta(days=30) <= expiry[ids[None]] - before < dt.timedelta(days=30, minutes=1)
    assert dt.timedelta(days=7) <= expiry[ids[7]] - before < dt.timedelta(days=7, minutes=1)
    assert expiry[ids[0]] is None  # never


def test_a_token_found_by_its_id_works_exactly_while_verify_accepts_it(tmp_path):
    """Web sessions name their token by ID (graph_api.ui.sessions): the same rule must end them."""
    state = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}", "k" * 40, token_ttl_days=30)
    tokens = {name: state.add_user(name, "self", person_id=f"P-{name}") for name in ("live", "revoked", "expired")}
    state.revoke(tokens["revoked"][0])
    with state.engine.begin() as conn:
        conn.execute(text("UPDATE api_token SET expires_at = :past WHERE token_id = :id"),
                     {"past": dt.datetime(2020, 1, 1), "id": tokens["expired"][0]})
    live_id, live_token = tokens["live"]
    assert state.principal_by_token_id(live_id) == state.verify(live_token)
    assert state.principal_by_token_id(live_id).person_id == "P-live"
    for name in ("revoked", "expired"):
        token_id, token = tokens[name]
        with pytest.raises(Exception, match="revoked" if name == "revoked" else "expired"):
            state.verify(token)
        assert state.principal_by_token_id(token_id) is None, name
    assert state.principal_by_token_id("00000000") is None
    assert state.principal_by_token_id(live_token) is None  # the secret is not an ID


OLD_SCHEMA = """
CREATE TABLE api_token (token_id VARCHAR(16) PRIMARY KEY, name VARCHAR(200) NOT NULL, role VARCHAR(20) NOT NULL,
    person_id VARCHAR(32), token_hash VARCHAR(64) NOT NULL UNIQUE, created_at DATETIME NOT NULL, revoked_at DATETIME);
CREATE TABLE steward_decision (id INTEGER PRIMARY KEY AUTOINCREMENT, at DATETIME NOT NULL,
    entity_type VARCHAR(40) NOT NULL, record_a VARCHAR(300) NOT NULL, record_b VARCHAR(300) NOT NULL,
    judgement VARCHAR(10) NOT NULL, steward VARCHAR(200) NOT NULL, reason TEXT, review_item VARCHAR(32));
CREATE TABLE correction_event (id INTEGER PRIMARY KEY AUTOINCREMENT, at DATETIME NOT NULL,
    request_id VARCHAR(16) NOT NULL, person_id VARCHAR(32) NOT NULL, property VARCHAR(80) NOT NULL,
    current_value TEXT, proposed_value TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT,
    status VARCHAR(10) NOT NULL, actor VARCHAR(200) NOT NULL, note TEXT);
"""


def test_an_old_state_database_is_migrated_and_its_tokens_expire_by_the_setting(tmp_path):
    import sqlite3

    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    old = StateStore(f"sqlite:///{path}", "k" * 40)
    # tokens as the previous release made them (no expiry column): one 100 days old, one 10
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    tokens = {}
    with sqlite3.connect(path) as db:
        for age in (100, 10):
            token = f"ckg_old{age}_secret"
            db.execute("INSERT INTO api_token (token_id, name, role, token_hash, created_at) VALUES (?,?,?,?,?)",
                       (f"old{age}", f"legacy-{age}", "auditor", old._hash(token),
                        (now - dt.timedelta(days=age)).isoformat(sep=" ")))
            tokens[age] = token
        db.execute("INSERT INTO correction_event (at, request_id, person_id, property, proposed_value, reason, "
                   "status, actor) VALUES (?, 'legacyreq', 'P1', 'phone', '138', 'r', 'open', 'someone')",
                   (now.isoformat(sep=" "),))
    migrated = StateStore(f"sqlite:///{path}", "k" * 40, token_ttl_days=90)
    with pytest.raises(Exception, match="token expired"):
        migrated.verify(tokens[100])
    assert migrated.verify(tokens[10]).name == "legacy-10"
    assert StateStore(f"sqlite:///{path}", "k" * 40, token_ttl_days=0).verify(tokens[100]).name == "legacy-100"
    # the legacy request is decided once; a second decision is a conflict
    assert migrated.decide_correction("legacyreq", "refused", "steward", "no")["status"] == "refused"
    with pytest.raises(ValueError, match="already refused"):
        migrated.decide_correction("legacyreq", "approved", "steward", "yes")


def test_users_add_expires_days_and_list_shows_expiry(api, monkeypatch):
    from typer.testing import CliRunner

    from campus_kg.cli import app
    runner = CliRunner()
    ws = str(api.workspace.root)
    week = runner.invoke(app, ["users", "add", "--name", "week", "--role", "auditor", "--expires-days", "7",
                               "--workspace", ws], terminal_width=200)
    forever = runner.invoke(app, ["users", "add", "--name", "forever", "--role", "auditor", "--expires-days", "0",
                                  "--workspace", ws], terminal_width=200)
    assert week.exit_code == 0 and forever.exit_code == 0, week.output + forever.output
    listed = runner.invoke(app, ["users", "list", "--workspace", ws], terminal_width=200).output
    week_id, forever_id = (out.output.split("token ")[1].split()[0] for out in (week, forever))
    in_a_week = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).strftime("%Y-%m-%d")
    assert in_a_week in next(line for line in listed.splitlines() if week_id in line)
    assert "never" in next(line for line in listed.splitlines() if forever_id in line)
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", "Zq8rT2vX9mK4pL7wN3bH6yC1dF5gJ0sA")
    refused = runner.invoke(app, ["users", "add", "--name", "forever", "--role", "auditor", "--expires-days", "0",
                                  "--workspace", ws])
    assert refused.exit_code != 0 and "never expires" in refused.output


# ---- 4. unencodable text and out-of-range dates ---------------------------------------------------
def _bodies(api) -> list[tuple[str, str, str, dict]]:
    """(role, method, path, a valid body) for every endpoint that takes a JSON body."""
    own = api.persons[0]
    return [
        ("self", "POST", "/me/corrections", {"property": "phone", "proposed_value": "13800000000",
                                             "reason": "changed", "evidence": "HR-1"}),
        ("steward", "POST", "/forms/title_promotion/prefill", {"person_id": own}),
        ("steward", "POST", "/review/items/no-such-item/decision", {"judgement": "unsure", "reason": "r"}),
        ("steward", "POST", "/entities/merge", {"ids": ["P99999998", "P99999999"], "reason": "r"}),
        ("steward", "POST", f"/entities/{own}/split", {"groups": [["a:1"], ["b:2"]], "reason": "r"}),
        ("steward", "POST", f"/entities/{own}/unmerge", {"reason": "r"}),
        ("steward", "POST", "/corrections/no-such-request/decision", {"status": "refused", "note": "n"}),
        ("analyst", "POST", "/cypher", {**CYPHER, "parameters": {"name": "x", "names": ["a", "b"]}}),
        ("analyst", "POST", "/queries/org_tree", {"parameters": {"p": "x"}, "entity": "Person"}),
    ]


def _text_paths(value, path=()):
    """Every place in a JSON value that holds text: dict keys too."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, ("key", k))
            yield from _text_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _text_paths(v, (*path, i))


def _with_surrogate(value, path):
    if not path:
        return "ok\ud800"
    step, rest = path[0], path[1:]
    if isinstance(step, tuple):  # a dict key
        return {(k + "\ud800" if k == step[1] else k): v for k, v in value.items()}
    copy = value.copy()
    copy[step] = _with_surrogate(value[step], rest)
    return copy


def test_every_text_field_refuses_a_lone_surrogate_with_422(api):
    checked = 0
    for role, method, path, body in _bodies(api):
        headers = {**api.headers(role, api.persons[0] if role == "self" else None),
                   "Content-Type": "application/json"}
        for where in _text_paths(body):
            r = httpx.request(method, f"{api.url}{path}", content=_json_bytes(_with_surrogate(body, where)),
                              headers=headers, timeout=60)
            assert r.status_code == 422, (path, where, r.status_code, r.text[:300])
            assert "lone UTF-16 surrogate" in r.text and r.json()["detail"]
            checked += 1
    assert checked >= 20


def test_query_and_path_text_cannot_carry_a_surrogate(api):
    steward = api.headers("steward")
    # %ED%A0%80 is \ud800 as (invalid) UTF-8: decoded with replacement, never a surrogate
    assert httpx.get(f"{api.url}/review/queue?entity_type=%ED%A0%80", headers=steward).status_code == 200
    assert httpx.get(f"{api.url}/persons/P%ED%A0%80", headers=steward).status_code == 404


@pytest.mark.parametrize("path,param", [("/lineage/{person}/name", "as_of"), ("/access-log", "since"),
                                        ("/audit-trail", "since")])
def test_dates_outside_the_calendar_in_utc_are_422(api, path, param):
    url = f"{api.url}{path.format(person=api.persons[0])}"
    auditor = api.headers("auditor")
    for outside in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00"):
        r = httpx.get(url, params={param: outside}, headers=auditor)
        assert r.status_code == 422 and "outside years 1–9999 once converted to UTC" in r.text, (outside, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", param]
    for inside in ("9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59", "0001-01-01"):
        assert httpx.get(url, params={param: inside}, headers=auditor).status_code == 200, inside


# ---- 5. a `self` token cannot tell unknown IDs from other people's --------------------------------
def test_self_gets_the_same_403_for_another_persons_id_and_an_unknown_one(api):
    own, other = api.persons
    me = api.headers("self", own)
    requests = [
        ("GET", "/persons/{id}", None, None),
        ("GET", "/lineage/{id}/name", None, None),
        ("GET", "/portraits/teachers/{id}", None, None),
        ("GET", "/portraits/students/{id}", None, None),
        ("POST", "/forms/title_promotion/prefill", None, {"person_id": "{id}"}),
        ("GET", "/access-log", {"person": "{id}"}, None),
    ]
    for method, path, params, body in requests:
        answers = []
        for person in (other, "P99999999", "not-an-id", "O00000001"):
            fill = (lambda d, p=person: {k: v.format(id=p) for k, v in d.items()} if d else None)  # noqa: E731
            r = httpx.request(method, f"{api.url}{path.format(id=person)}", params=fill(params), json=fill(body),
                              headers=me)
            answers.append((r.status_code, r.content))
        assert {a for a in answers} == {(403, answers[0][1])}, (path, answers)
        own_fill = (lambda d: {k: v.format(id=own) for k, v in d.items()} if d else None)  # noqa: E731
        assert httpx.request(method, f"{api.url}{path.format(id=own)}", params=own_fill(params),
                             json=own_fill(body), headers=me).status_code == 200, path


# ---- 6. the client in the access log --------------------------------------------------------------
def _last_client(api, person: str) -> str | None:
    return api.state.access_entries(person_id=person)[-1]["client"]


def test_a_forged_forwarded_for_is_not_logged(api):
    person = api.persons[1]
    r = httpx.get(f"{api.url}/persons/{person}", headers={**api.headers("auditor"), "X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200 and _last_client(api, person) == "127.0.0.1"


def test_a_trusted_proxy_names_the_client(api):
    from graph_api.app import create_app

    person = api.persons[1]
    trusting = create_app(api.settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]}))
    with serve(trusting) as url:
        r = httpx.get(f"{url}/persons/{person}", headers={**api.headers("auditor"), "X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200 and _last_client(api, person) == "203.0.113.9"
        # the proxy appends the peer it saw; what the client wrote before that is not believed either
        r = httpx.get(f"{url}/persons/{person}",
                      headers={**api.headers("auditor"), "X-Forwarded-For": "198.51.100.1, 203.0.113.10"})
        assert _last_client(api, person) == "203.0.113.10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_campus_kg_serve_logs_the_socket_peer(api):
    port = _free_port()
    env = {**os.environ, "CAMPUS_KG_TRUSTED_PROXIES": ""}
    server = subprocess.Popen([str(Path(sys.executable).parent / "campus-kg"), "serve", "--workspace",
                               str(api.workspace.root), "--port", str(port), "--no-access-log"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "campus-kg serve did not start"
            time.sleep(0.2)
        person = api.persons[0]
        r = httpx.get(f"http://127.0.0.1:{port}/persons/{person}",
                      headers={**api.headers("steward"), "X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200 and _last_client(api, person) == "127.0.0.1"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---- 7. one decision wins -------------------------------------------------------------------------
def _race(n: int, call) -> list[httpx.Response]:
    barrier = threading.Barrier(n)
    answers: list[httpx.Response] = []

    def one(i: int) -> None:
        barrier.wait()
        answers.append(call(i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers


def test_concurrent_correction_decisions_one_wins(api):
    me = api.persons[0]
    request = httpx.post(f"{api.url}/me/corrections", headers=api.headers("self", me),
                         json={"property": "phone", "proposed_value": "13912345678", "reason": "race"}).json()
    stewards = [api.headers("steward") for _ in range(8)]
    answers = _race(8, lambda i: httpx.post(f"{api.url}/corrections/{request['request_id']}/decision",
                                            json={"status": "refused", "note": f"steward {i}"},
                                            headers=stewards[i], timeout=60))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 7, codes
    winner = next(a for a in answers if a.status_code == 200).json()
    events = [e for e in api.state.corrections(me) if e["request_id"] == request["request_id"]]
    assert len(events) == 1 and events[0]["note"] == winner["note"]
    with api.state.engine.connect() as conn:
        decided = conn.execute(text("SELECT count(*) FROM correction_event WHERE request_id = :r AND status != 'open'"),
                               {"r": request["request_id"]}).scalar()
    assert decided == 1


def test_concurrent_review_decisions_one_wins(api):
    steward = api.headers("steward")
    queue = httpx.get(f"{api.url}/review/queue", params={"page_size": 500}, headers=steward).json()["items"]
    item = next(i for i in queue if i["master_a"] and i["master_b"] and i["master_a"] != i["master_b"]
                and not i["reason"].startswith("ambiguous mention"))
    stewards = [api.headers("steward") for _ in range(8)]
    answers = _race(8, lambda i: httpx.post(f"{api.url}/review/items/{item['item_id']}/decision",
                                            json={"judgement": "not_same", "reason": f"steward {i}"},
                                            headers=stewards[i], timeout=60))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * 7, codes
    assert len([d for d in api.state.decisions_log() if d["review_item"] == item["item_id"]]) == 1
    job = next(a for a in answers if a.status_code == 202).json()["job"]
    status = api.app.state.applier.wait(job, timeout=300)  # leave the workspace settled for the next test
    assert status["last_error"] is None, status


def test_an_unsure_judgement_leaves_the_item_open(tmp_path):
    state = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}", "k" * 40)
    state.add_decision("Person", "a:1", "b:2", "unsure", "s1", "cannot tell", "item-1")
    state.add_decision("Person", "a:1", "b:2", "same", "s2", "checked with HR", "item-1")
    with pytest.raises(ValueError, match="already decided"):
        state.add_decision("Person", "a:1", "b:2", "not_same", "s3", "no", "item-1")
    # decisions outside the queue (merge, split) are not items: as many as stewards make
    for _ in range(2):
        state.add_decision("Person", "a:1", "b:2", "not_same", "s3", "split")


# ---- 8. no stack traces ---------------------------------------------------------------------------
def test_an_unhandled_error_is_a_generic_500_logged_server_side(tmp_path, caplog):
    from graph_api.app import create_app

    app = create_app(Settings(workspace=tmp_path))

    @app.get("/explode")
    def explode() -> None:  # an endpoint with a bug: the error a real defect would raise
        raise RuntimeError("secret detail /srv/campus-kg/state.sqlite")

    _, token = app.state.state_store.add_user("t", "admin")
    with caplog.at_level(logging.ERROR), serve(app) as url:
        r = httpx.get(f"{url}/explode", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["detail"] == "internal server error 服务器内部错误" and set(body) == {"detail", "error_id"}
    assert "Traceback" not in r.text and "secret detail" not in r.text and "RuntimeError" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "campus_kg.api" and body["error_id"] in rec.getMessage()]
    assert logged and logged[0].exc_info and "secret detail" in str(logged[0].exc_info[1])


# ---- 9. formula cells in the CSV export -----------------------------------------------------------
def test_the_csv_export_writes_formula_cells_as_text(api):
    me = api.persons[1]
    headers = api.headers("self", me)
    formulas = {"proposed_value": "=HYPERLINK(\"http://evil.example\",\"x\")", "reason": "@SUM(A1:A9)",
                "evidence": "+cmd|' /C calc'!A0"}
    assert httpx.post(f"{api.url}/me/corrections", json={"property": "phone", **formulas},
                      headers=headers).status_code == 201
    for start in ("-2+3", "\tTAB", "\rCR"):
        assert httpx.post(f"{api.url}/me/corrections", json={"property": "phone", "proposed_value": start,
                                                             "reason": "r"}, headers=headers).status_code == 201
    z = httpx.get(f"{api.url}/me/export", params={"format": "csv"}, headers=headers)
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("corrections.csv").decode("utf-8-sig"), newline="")))
        attributes = list(csv.DictReader(io.StringIO(zf.read("attributes.csv").decode("utf-8-sig"), newline="")))
    mine = next(r for r in rows if r["reason"] == "'@SUM(A1:A9)")
    assert mine["proposed_value"] == "'" + formulas["proposed_value"] and mine["evidence"] == "'" + formulas["evidence"]
    assert {"'-2+3", "'\tTAB", "'\rCR"} <= {r["proposed_value"] for r in rows}
    cells = [v for r in rows + attributes for v in r.values() if v]
    assert not [v for v in cells if v[0] in "=+-@\t\r"], "an unescaped formula cell"
    assert any(a["authority"] == "1" for a in attributes)  # numbers are written as numbers


# ---- the guard does not slow valid requests -------------------------------------------------------
@pytest.mark.slow
def test_the_guard_costs_valid_requests_nothing_measurable(api):
    """p50 of GET /persons/{id}, 500 requests each, with the guard and with the same app without
    it (the token then checked by get_principal, as before the guard), alternating request by
    request so that both see the same load on a shared machine."""
    from graph_api.app import create_app
    from graph_api.request_guard import RequestGuard

    plain = create_app(api.settings)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not RequestGuard]
    person, headers = api.persons[0], api.headers("steward")
    times: dict[str, list[float]] = {"guard": [], "no guard": []}
    with serve(plain) as plain_url, httpx.Client(headers=headers) as client:
        urls = {"guard": api.url, "no guard": plain_url}
        for url in urls.values():
            for _ in range(30):
                client.get(f"{url}/persons/{person}")
        for i in range(1000):
            name = ("guard", "no guard")[i % 2]
            started = time.perf_counter()
            assert client.get(f"{urls[name]}/persons/{person}").status_code == 200
            times[name].append(time.perf_counter() - started)
    p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"GET /persons/{{id}} p50: guard {p50['guard']:.2f} ms, no guard {p50['no guard']:.2f} ms")
    assert p50["guard"] <= p50["no guard"] * 1.25 + 0.5, p50
