"""The graph API over real HTTP: a uvicorn server on a free loopback port, a real Ladybug graph."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from campus_kg.state import StateStore
from graph_api.app import create_app
from ingest.lakehouse import Lakehouse


@pytest.fixture(scope="module")
def server(demo):
    app = create_app(demo.settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app.state.state_store
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def person_ids(demo):
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        rows = lake.con.execute("""SELECT l.master_id FROM res_link l JOIN dwd_person_record p
            ON p.record_id = l.member_id WHERE p.id_number IS NOT NULL AND l.entity_type = 'Person'
            GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2""").fetchall()
    return [r[0] for r in rows]


def _token(state: StateStore, role: str, person: str | None = None) -> dict:
    _, token = state.add_user(f"test-{role}", role, person)
    return {"Authorization": f"Bearer {token}"}


def test_health_is_public_and_names_the_build(server, demo):
    url, _ = server
    r = httpx.get(f"{url}/health")
    assert r.status_code == 200 and r.json()["graph_build"] == demo.build.build_id


def test_deny_by_default(server, person_ids):
    url, state = server
    assert httpx.get(f"{url}/persons/{person_ids[0]}").status_code == 401
    assert httpx.get(f"{url}/persons/{person_ids[0]}", headers={"Authorization": "Bearer nope"}).status_code == 401
    me = _token(state, "self", person_ids[0])
    assert httpx.get(f"{url}/persons/{person_ids[1]}", headers=me).status_code == 403


def test_a_person_reads_their_own_record_with_its_sources(server, person_ids, demo):
    url, state = server
    r = httpx.get(f"{url}/persons/{person_ids[0]}", headers=_token(state, "self", person_ids[0]))
    assert r.status_code == 200
    body = r.json()
    links = demo.workspace.root / "links-api.csv"
    from campus_kg.pipeline import export_links
    export_links(demo.workspace, links)
    expected = sum(1 for line in links.read_text(encoding="utf-8").splitlines() if line.endswith(f",{person_ids[0]}"))
    assert len(body["source_records"]) == expected >= 2
    id_number = next(a for a in body["attributes"] if a["property"] == "id_number")
    assert not id_number["masked"] and len(id_number["value"]) == 18


def test_sensitive_values_are_masked_for_analysts(server, person_ids):
    url, state = server
    body = httpx.get(f"{url}/persons/{person_ids[0]}", headers=_token(state, "analyst")).json()
    id_number = next(a for a in body["attributes"] if a["property"] == "id_number")
    assert id_number["masked"] and "*" in id_number["value"] and len(id_number["value"]) == 18
    name = next(a for a in body["attributes"] if a["property"] == "name")
    assert not name["masked"]


def test_every_read_is_in_the_access_log(server, person_ids):
    url, state = server
    before = len(state.access_entries(person_id=person_ids[1]))
    headers = _token(state, "auditor")
    assert httpx.get(f"{url}/persons/{person_ids[1]}", headers=headers).status_code == 200
    entries = state.access_entries(person_id=person_ids[1])
    assert len(entries) == before + 1
    assert entries[-1]["role"] == "auditor" and entries[-1]["endpoint"] == f"GET /persons/{person_ids[1]}"
    assert "id_number" in entries[-1]["fields"]


def test_access_log_is_append_only(server):
    _, state = server
    from sqlalchemy import text
    with pytest.raises(Exception, match="append-only"):
        with state.engine.begin() as conn:
            conn.execute(text("DELETE FROM access_log"))


def test_unknown_person_is_404(server):
    url, state = server
    assert httpx.get(f"{url}/persons/P99999999", headers=_token(state, "steward")).status_code == 404
