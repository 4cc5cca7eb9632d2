"""Analysts' Cypher runs in worker processes: a crash, a memory bomb or a runaway query costs one
worker, never the server; answers are capped in bytes; one user cannot take every worker.

Each case is tested twice: through HTTP (where the query parser may already refuse a query with 400:
either way the server must stay up) and on the worker pool directly, so the worker's own defences
are exercised whatever the parser accepts."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from graph_api.cypher_worker import (AnswerTooLarge, CypherWorkerPool, QueryOutOfMemory, QueryTimedOut,
                                     WorkerCrashed)
from graph_api.routers.analysts import analyst_graph
from graph_api.store import open_store

SEGFAULT = "RETURN date('0001-01-01') - interval('1 day') AS d"
MEMORY_BOMBS = [
    "RETURN range(1, 50000000) AS r",
    "UNWIND range(1, 100000000) AS i RETURN collect(i) AS c",
    "MATCH (a:Statement), (b:Statement) RETURN collect(a.id + b.id) AS c",
]
# Ladybug does not interrupt one long expression: only the pool's kill stops this one.
UNINTERRUPTIBLE = "RETURN size(range(1, 50000000)) AS n"
# A join Ladybug interrupts at its own timeout (the worker survives).
SLOW = "MATCH (a:Statement), (b:Statement), (c:Person) WHERE a.id < b.id AND b.id < c.id RETURN count(*) AS n"
SMALL = "MATCH (o:Organisation) RETURN count(o) AS n"
MiB = 2**20


def _rss_bytes() -> int:
    """This process's resident memory: the HTTP server runs here, in a thread."""
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


@contextmanager
def _app(api, **settings):
    """A second server on the same workspace with other settings, and an analyst's headers for it."""
    from graph_api.app import create_app
    from tests.http_server import serve

    app = create_app(api.settings.model_copy(update=settings))
    with serve(app) as url:
        def headers(role: str = "analyst") -> dict[str, str]:
            _, token = app.state.state_store.add_user(f"isolation-{role}", role)
            return {"Authorization": f"Bearer {token}"}
        yield app, url, headers


def _server_is_up(api) -> None:
    assert httpx.get(f"{api.url}/health", timeout=10).status_code == 200
    r = httpx.get(f"{api.url}/persons/{api.persons[0]}", headers=api.headers("steward"), timeout=10)
    assert r.status_code == 200 and r.json()
    r = httpx.post(f"{api.url}/cypher", json={"query": SMALL}, headers=api.headers("analyst"), timeout=30)
    assert r.status_code == 200 and r.json()["rows"][0]["n"] > 0


def test_the_segfault_query_costs_one_worker(api):
    r = httpx.post(f"{api.url}/cypher", json={"query": SEGFAULT}, headers=api.headers("analyst"), timeout=60)
    assert r.status_code in (400, 422), r.text  # refused by the parser, or it crashed its worker
    if r.status_code == 422:
        assert "crashed its worker" in r.json()["detail"]
    _server_is_up(api)

    pool: CypherWorkerPool = api.app.state.cypher_pool
    path, build_id = analyst_graph(api.workspace)
    replaced = pool.replaced
    with pytest.raises(WorkerCrashed, match="crashed its worker"):
        pool.run(path, build_id, SEGFAULT, max_rows=10)
    assert pool.replaced == replaced + 1
    assert pool.run(path, build_id, "RETURN 1 AS one", max_rows=10).rows == [{"one": 1}]


@pytest.mark.parametrize("query", MEMORY_BOMBS)
def test_a_memory_bomb_is_bounded_and_the_server_does_not_grow(api, query):
    pool: CypherWorkerPool = api.app.state.cypher_pool
    path, build_id = analyst_graph(api.workspace)
    before = _rss_bytes()
    r = httpx.post(f"{api.url}/cypher", json={"query": query}, headers=api.headers("analyst"), timeout=120)
    assert r.status_code in (400, 413, 422), r.text
    with pytest.raises((QueryOutOfMemory, WorkerCrashed, AnswerTooLarge)):
        pool.run(path, build_id, query, max_rows=1000)
    grown = _rss_bytes() - before
    assert grown < 200 * MiB, f"the server grew by {grown / MiB:.0f} MiB"
    _server_is_up(api)


def test_a_runaway_query_is_killed_at_the_timeout_and_its_worker_replaced(api):
    with _app(api, query_timeout_ms=300) as (app, url, headers):
        analyst = headers()
        pool: CypherWorkerPool = app.state.cypher_pool
        assert httpx.post(f"{url}/cypher", json={"query": SMALL}, headers=analyst, timeout=60).status_code == 200
        first_worker = pool.worker_pids()
        started = time.monotonic()
        r = httpx.post(f"{url}/cypher", json={"query": UNINTERRUPTIBLE}, headers=analyst, timeout=60)
        took = time.monotonic() - started
        assert r.status_code in (400, 408), r.text
        if r.status_code == 408:
            assert "300 ms" in r.json()["detail"] and took < 10
            assert pool.replaced == 1 and first_worker[0] not in pool.worker_pids()
        # Ladybug's own timeout: the worker stops the query and carries on
        r = httpx.post(f"{url}/cypher", json={"query": SLOW}, headers=analyst, timeout=60)
        assert r.status_code in (400, 408), r.text
        assert httpx.post(f"{url}/cypher", json={"query": SMALL}, headers=analyst, timeout=60).status_code == 200

        path, build_id = analyst_graph(api.workspace)
        # A worker that stops answering at all (here: frozen by SIGSTOP, as a query stuck where the
        # database never checks its timeout would be) is killed at the timeout and replaced.
        pool.run(path, build_id, SMALL, max_rows=10)
        frozen = pool.worker_pids()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        replaced = pool.replaced
        started = time.monotonic()
        try:
            with pytest.raises(QueryTimedOut, match="300 ms"):
                pool.run(path, build_id, SMALL, max_rows=10)
            assert time.monotonic() - started < 10 and pool.replaced == replaced + 1
            assert len(set(frozen) - set(pool.worker_pids())) == 1  # the one that was asked is gone
        finally:
            for pid in set(frozen) & set(pool.worker_pids()):
                os.kill(pid, signal.SIGCONT)
        with pytest.raises(QueryTimedOut, match="300 ms"):
            pool.run(path, build_id, SLOW, max_rows=10)
        assert pool.replaced == replaced + 1  # interrupted by Ladybug: the same worker answers on
        assert pool.run(path, build_id, SMALL, max_rows=10).rows[0]["n"] > 0


def test_one_user_cannot_take_every_worker_and_stewards_stay_responsive(api):
    with _app(api, query_timeout_ms=4000, cypher_workers=2, cypher_per_user_concurrency=2) as (app, url, headers):
        first, second = headers(), headers()
        steward = headers("steward")
        statuses: list[int] = []

        def slow(who):
            r = httpx.post(f"{url}/cypher", json={"query": SLOW}, headers=who, timeout=60)
            statuses.append(r.status_code)

        running = [threading.Thread(target=slow, args=(who,)) for who in (first, first, second, second)]
        for t in running:
            t.start()
        deadline = time.monotonic() + 20
        while sum(getattr(app.state, "cypher_admission", None) and app.state.cypher_admission.running.values()
                  or [0]) < 4:
            assert time.monotonic() < deadline, "the slow queries did not start"
            time.sleep(0.02)
        try:
            refused = httpx.post(f"{url}/cypher", json={"query": SMALL}, headers=first, timeout=30)
            assert refused.status_code == 429 and refused.headers["Retry-After"], refused.text
            assert "cypher_per_user_concurrency" in refused.json()["detail"]
            took = []
            for person in api.persons:
                started = time.monotonic()
                r = httpx.get(f"{url}/persons/{person}", headers=steward, timeout=30)
                took.append(time.monotonic() - started)
                assert r.status_code == 200
            assert max(took) < 1.0, took
        finally:
            for t in running:
                t.join()
        assert statuses and all(s in (400, 408) for s in statuses), statuses  # refused, or stopped at 4 s
        assert httpx.post(f"{url}/cypher", json={"query": SMALL}, headers=first, timeout=30).status_code == 200


def test_answers_are_capped_in_bytes(api):
    with _app(api, cypher_max_answer_bytes=20_000) as (app, url, headers):
        analyst = headers()
        big = {"query": "MATCH (s:Statement) RETURN s LIMIT 500"}
        r = httpx.post(f"{url}/cypher", json=big, headers=analyst, timeout=60)
        assert r.status_code == 413 and "20000 bytes" in r.json()["detail"], r.text
        small = httpx.post(f"{url}/cypher", json={"query": "MATCH (s:Statement) RETURN s.id AS id LIMIT 20"},
                           headers=analyst, timeout=60)
        assert small.status_code == 200 and len(small.content) < 20_000 and small.json()["row_count"] == 20
        path, build_id = analyst_graph(api.workspace)
        with pytest.raises(AnswerTooLarge):
            app.state.cypher_pool.run(path, build_id, big["query"], max_rows=1000)


def test_the_row_cap_and_json_values_come_back_as_before(api):
    analyst = api.headers("analyst")
    r = httpx.post(f"{api.url}/cypher", json={"query": "UNWIND range(1, 5000) AS i RETURN i"}, headers=analyst,
                   timeout=60)
    body = r.json()
    assert r.status_code == 200 and body["truncated"] and body["row_count"] == api.settings.cypher_max_rows
    assert body["columns"] == ["i"] and body["rows"][:2] == [{"i": 1}, {"i": 2}]
    # timestamps as FastAPI writes them (ISO 8601), exactly as the in-process graph reads them
    query = "MATCH (s:Statement) RETURN s.id AS id, s.first_seen AS seen ORDER BY s.id LIMIT 3"
    rows = httpx.post(f"{api.url}/cypher", json={"query": query}, headers=analyst, timeout=60).json()["rows"]
    path = api.workspace.read_current_graph()["analyst_path"]
    with open_store(api.settings, backend="ladybug", ladybug_path=Path(path), read_only=True) as store:
        expected = store.query(query)
    assert rows == [{"id": e["id"], "seen": e["seen"].isoformat()} for e in expected] and len(rows) == 3
    nothing = "MATCH (o:Organisation) WHERE o.id = 'none' RETURN o.name AS n"
    empty = httpx.post(f"{api.url}/cypher", json={"query": nothing}, headers=analyst, timeout=60).json()
    assert empty["columns"] == ["n"] and empty["rows"] == [] and not empty["truncated"]


def test_a_person_named_in_the_query_text_is_in_the_access_log(api):
    person = api.persons[1]
    query = f"MATCH (p:Person) WHERE p.id = '{person}' RETURN count(p) AS n"
    before = len(api.state.access_entries(person_id=person))
    r = httpx.post(f"{api.url}/cypher", json={"query": query}, headers=api.headers("analyst"), timeout=60)
    assert r.status_code == 200 and r.json()["rows"] == [{"n": 1}]
    entries = api.state.access_entries(person_id=person)
    assert len(entries) == before + 1 and entries[-1]["endpoint"] == "POST /cypher"


def test_no_analyst_projection_is_503(api, tmp_path):
    """An old build (or Neo4j) has no analyst projection: ad-hoc Cypher is refused, never run on the full graph."""
    from campus_kg.workspace import Workspace
    from graph_api.app import create_app
    from tests.http_server import serve

    pointer = api.workspace.read_current_graph()
    old = Workspace.at(tmp_path / "ws")
    old.publish_graph({k: v for k, v in pointer.items() if k != "analyst_path"})
    app = create_app(api.settings.model_copy(update={"workspace": old.root}))
    with serve(app) as url:
        _, token = app.state.state_store.add_user("old-build", "analyst")
        r = httpx.post(f"{url}/cypher", json={"query": SMALL}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and "no analyst projection" in r.json()["detail"]
        assert app.state.cypher_pool.started == 0


def test_a_worker_reopens_its_graph_when_the_build_changes(api, demo):
    """One worker, two files: it answers from whichever file the query names, and closes the other."""
    pointer = {**api.workspace.read_current_graph(), "path": demo.workspace.read_current_graph()["path"]}
    pool = CypherWorkerPool(api.settings.model_copy(update={"cypher_workers": 1}))
    query = "MATCH (p:Person) WHERE p.id = $id RETURN p.id_number IS NULL AS hidden"
    try:
        def hidden(path: str, build_id: str) -> bool:
            return pool.run(path, build_id, query, {"id": api.persons[0]}, max_rows=1).rows[0]["hidden"]

        assert hidden(pointer["analyst_path"], pointer["build_id"]) is True  # the projection has no raw values
        assert hidden(pointer["path"], "the-full-graph") is False
        assert hidden(pointer["analyst_path"], pointer["build_id"]) is True
        assert pool.started == 1 and pool.replaced == 0
    finally:
        pool.close()
