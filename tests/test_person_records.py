"""Person records precomputed per build (graph_api.graph_build.person_records): every stored record is byte for
byte the live store read, on both backends; GET /persons/{id} is served from them without a graph
read, under the same authorisation and access log; a patch rewrites the records it touches, and its
artefact equals a full one; the artefact is published with the graph and pruned with it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException

from campus_kg import pipeline
from campus_kg.state import StateStore
from campus_kg.workspace import Workspace
from graph_api.graph_build.person_records import PersonRecords, StoredPerson, write_person_records
from graph_api.graph_build.run import BuildResult, build_graph, edge_frames
from graph_api.person_view import find_person, find_stored, fields_returned, person_record
from ingest.lakehouse import Lakehouse
from tests.samples import persons_without_id_number
from tests.test_graph_patch import QUIET, changed  # noqa: F401  (the fixture: a small change to the demo's sources)
from tests.test_person_read import _count_calls


def _live_and_stored(graph, store, requested: str):
    """(live JSON, live fields, stored JSON, stored fields) for a raw and for a masked viewer."""
    stored = find_stored(graph, requested)
    for role, sees in (("auditor", True), ("analyst", False)):
        live = person_record(store, requested, role)  # a plain store: no cache, one live read
        yield role, (live.model_dump_json().encode(), fields_returned(live)), (stored.body(requested, sees),
                                                                                stored.fields(sees))


def test_every_stored_record_is_the_live_store_read(api):
    """Every master person of the build (and every former ID), raw and masked, on each backend."""
    graph = api.app.state.graph
    pointer = api.workspace.read_current_graph()
    assert pointer["person_records_path"] and Path(pointer["person_records_path"]).exists()
    records = PersonRecords(pointer["person_records_path"])
    try:
        ids = records.master_ids()
        former = [r[0] for r in records._con().execute("SELECT id FROM former_id").fetchall()]
    finally:
        records.close()
    assert len(ids) == graph.query("MATCH (p:Person) RETURN count(p) AS n")[0]["n"] > 500
    with graph._lease() as build:
        store = build.store
        for person in ids + former:
            try:
                find_person(store, person)
            except HTTPException as live_refusal:
                with pytest.raises(HTTPException) as stored_refusal:
                    find_stored(graph, person)
                assert (stored_refusal.value.status_code, stored_refusal.value.detail) == (
                    live_refusal.status_code, live_refusal.detail)
                continue
            for role, live, stored in _live_and_stored(graph, store, person):
                assert stored == live, (api.backend, person, role)


def test_get_person_is_served_from_the_records_without_a_graph_read(api, monkeypatch):
    auditor, analyst = api.headers("auditor"), api.headers("analyst")
    person, other = api.persons
    with api.app.state.graph._lease() as build:
        store = build.store
    calls = _count_calls(store, monkeypatch, ("query", "person_read", "_run_read"))
    raw = httpx.get(f"{api.url}/persons/{person}", headers=auditor)
    masked = httpx.get(f"{api.url}/persons/{person}", headers=analyst)
    assert raw.status_code == masked.status_code == 200
    assert sum(calls.values()) == 0, calls  # one lookup in the artefact, no graph read
    assert raw.content == person_record(store, person, "auditor").model_dump_json().encode()
    assert masked.content == person_record(store, person, "analyst").model_dump_json().encode()
    assert raw.content != masked.content  # the demo's persons have sensitive values
    # Every read is logged, with the fields the caller's kind of record holds.
    logged = api.state.access_entries(person_id=person)[-2:]
    assert {e["role"] for e in logged} == {"auditor", "analyst"}
    assert httpx.get(f"{api.url}/persons/NO-SUCH-PERSON", headers=auditor).status_code == 404


def test_a_self_caller_reaches_only_their_own_stored_record(api):
    person, other = api.persons
    own = api.headers("self", person)
    mine = httpx.get(f"{api.url}/persons/{person}", headers=own)
    assert mine.status_code == 200 and mine.json()["master_id"] == person
    assert httpx.get(f"{api.url}/me", headers=own).content == mine.content
    foreign = httpx.get(f"{api.url}/persons/{other}", headers=own)
    unknown = httpx.get(f"{api.url}/persons/NO-SUCH-PERSON", headers=own)
    assert foreign.status_code == unknown.status_code == 403
    assert foreign.json() == unknown.json()  # the same answer: nothing tells which IDs exist


def test_a_patch_rewrites_the_records_it_touches_and_equals_a_full_artefact(changed, tmp_path):  # noqa: F811
    ws, settings, staff_no = changed
    before = ws.read_current_graph()
    result = build_graph(settings, ws, mode="patch")
    pointer = ws.read_current_graph()
    assert pointer["mode"] == "patch" and pointer["person_records_path"] != before["person_records_path"]
    assert Path(before["person_records_path"]).exists()  # the previous build's: a server may still read it
    full = tmp_path / "full.records.sqlite"
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        total = write_person_records(lake.con, edge_frames(lake, BuildResult("x", "ladybug")), full)
    # A new load of a source moves the last_seen of all its statements, but a stored record holds the
    # source's stand-in for it: only the persons the change touches are written again.
    assert result.plan.refreshed_sources and 0 < result.person_records < total / 10, result.person_records
    assert _contents(Path(pointer["person_records_path"])) == _contents(full)

    # A steward's decision alone touches the persons it joins and those related to them: only they are
    # assembled again, and the artefact still equals a full one.
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        (a, master_a), = persons_without_id_number(lake, 1)
        b = lake.con.execute("""SELECT min(l.member_id) FROM res_link l JOIN dwd_person_record p
            ON p.record_id = l.member_id WHERE l.entity_type = 'Person' AND l.master_id <> ?
            GROUP BY l.master_id ORDER BY l.master_id LIMIT 1""", [master_a]).fetchone()[0]
    StateStore(settings.state_database_url(), settings.token_secret.get_secret_value()).add_decision(
        "Person", a, b, "same", "steward-1", "one person, two records")
    pipeline.run_resolve(ws, QUIET, settings)
    decided = build_graph(settings, ws, mode="patch")
    assert not decided.plan.refreshed_sources and 0 < decided.person_records < total / 10, decided.person_records
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        write_person_records(lake.con, edge_frames(lake, BuildResult("x", "ladybug")), full)
    assert _contents(Path(ws.read_current_graph()["person_records_path"])) == _contents(full)

    # The merged person's former ID answers with the survivor's record, as the live read does.
    from graph_api.app import create_app
    from tests.http_server import serve
    merged = _contents(full)["former_id"]
    assert any(r[3] for r in merged), merged
    app = create_app(settings)
    with serve(app) as url:
        _, token = app.state.state_store.add_user("auditor", "auditor")
        graph = app.state.graph
        with graph._lease() as build:
            store = build.store
            for former, _, _, into in merged:
                answer = httpx.get(f"{url}/persons/{former}", headers={"Authorization": f"Bearer {token}"})
                if into:
                    assert answer.json()["status"] == "merged" and answer.json()["master_id"] == into
                    assert answer.content == person_record(store, former, "auditor").model_dump_json().encode()
        graph.close()


def _contents(path: Path) -> dict:
    """What an artefact serves: every person's record as each kind of viewer reads it (its sources'
    latest loads in place), what the access log says was read, and the former IDs."""
    records = PersonRecords(path)
    try:
        people = {}
        for master in records.master_ids():
            stored = StoredPerson(master, "active", *records.person(master))
            people[master] = (stored.body(master, True), stored.body(master, False), stored.fields(True),
                              stored.fields(False))
        return {"person": people, "former_id": sorted(records._con().execute("SELECT * FROM former_id").fetchall())}
    finally:
        records.close()


def test_a_rebuild_publishes_its_records_with_the_graph_and_prunes_old_ones(demo, tmp_path):
    import shutil
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    settings = demo.settings.model_copy(update={"workspace": ws.root})
    first = ws.read_current_graph()
    build_graph(settings, ws, mode="full")
    second = ws.read_current_graph()
    build_graph(settings, ws, mode="full")
    third = ws.read_current_graph()
    assert len({first["person_records_path"], second["person_records_path"], third["person_records_path"]}) == 3
    # Kept: the served build's and the one before it (a server may still answer from it).
    assert not Path(first["person_records_path"]).exists()
    assert Path(second["person_records_path"]).exists() and Path(third["person_records_path"]).exists()
    stored = {p.name for p in (ws.graph_dir / "records").iterdir()}
    assert stored == {Path(second["person_records_path"]).name, Path(third["person_records_path"]).name}


def test_revocation_takes_effect_within_the_token_cache_bound(demo, tmp_path, monkeypatch):
    """token_cache_seconds: a verified token is not looked up again within the bound, and a revoked
    one is refused once the bound has passed."""
    import shutil

    from graph_api.app import create_app
    from tests.http_server import serve
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    lookups = []
    real_verify = StateStore.verify
    monkeypatch.setattr(StateStore, "verify", lambda self, token: lookups.append(token) or real_verify(self, token))
    settings = demo.settings.model_copy(update={"workspace": tmp_path / "ws", "token_cache_seconds": 1.0})
    app = create_app(settings)
    state = app.state.state_store
    token_id, token = state.add_user("cached", "steward")
    headers = {"Authorization": f"Bearer {token}"}
    with serve(app) as url:
        assert [httpx.get(f"{url}/corrections", headers=headers).status_code for _ in range(3)] == [200] * 3
        assert len(lookups) == 1  # the first request looked the token up; the next two trusted it
        state.revoke(token_id)
        deadline = time.monotonic() + 1.0 + 0.5
        while httpx.get(f"{url}/corrections", headers=headers).status_code != 401:
            assert time.monotonic() < deadline, "a revoked token still worked past token_cache_seconds"
            time.sleep(0.05)
        app.state.graph.close()
