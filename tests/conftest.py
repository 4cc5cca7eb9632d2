from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from campus_kg import pipeline
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import open_store
from ingest.synthetic import GenerationResult, generate
from tests.backends import BACKENDS, require_neo4j, use_own_neo4j

# Before anything opens Neo4j: under pytest-xdist each worker has a server pair of its own.
use_own_neo4j(os.environ.get("PYTEST_XDIST_WORKER"))


@dataclass
class Demo:
    generated: GenerationResult
    workspace: Workspace
    settings: Settings
    ingest: object
    resolve: object
    build: object


def run_pipeline(tmp: Path, persons: int, seed: int = 7) -> Demo:
    generated = generate(tmp / "sources", persons=persons, seed=seed)
    ws = Workspace.at(tmp / "ws")
    settings = Settings(workspace=ws.root)
    console = Console(quiet=True)
    ing = pipeline.run_ingest(generated.mapping_path, ws, console)
    res = pipeline.run_resolve(ws, console)
    built = pipeline.run_build(settings, ws, console)
    return Demo(generated, ws, settings, ing, res, built)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """A small synthetic university run through the whole pipeline once per test session."""
    return run_pipeline(tmp_path_factory.mktemp("demo"), persons=800)


@pytest.fixture
def graph_store_factory(tmp_path):
    """Opens an empty store of the requested backend, closes it afterwards."""
    opened = []

    def make(backend: str):
        if backend == "neo4j":
            require_neo4j()
        settings = Settings(workspace=tmp_path)
        store = open_store(settings, backend=backend, ladybug_path=tmp_path / "contract.lbdb")
        if backend == "neo4j":
            store.clear()
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()


@dataclass
class Api:
    url: str
    app: object
    workspace: Workspace
    settings: Settings
    persons: list[str]  # two master persons with several records each
    backend: str = "ladybug"

    @property
    def state(self):
        return self.app.state.state_store

    def graph_query(self, cypher: str, parameters: dict | None = None) -> list[dict]:
        return self.app.state.graph.query(cypher, parameters)

    def headers(self, role: str, person: str | None = None) -> dict[str, str]:
        _, token = self.state.add_user(f"test-{role}", role, person)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", params=BACKENDS)
def api(request, demo, tmp_path_factory):
    """The API over real HTTP on a copy of the demo workspace (tests here may change it), once with
    each graph backend: on Neo4j the same lakehouse is built into the Neo4j servers and served from
    there (analysts' Cypher still runs on the embedded analyst projection)."""
    import shutil

    from graph_api.app import create_app
    from graph_api.graph_build.run import build_graph
    from ingest.lakehouse import Lakehouse
    from tests.http_server import serve

    backend = request.param
    root = tmp_path_factory.mktemp(f"api-{backend}") / "ws"
    shutil.copytree(demo.workspace.root, root)
    ws = Workspace.at(root)
    settings = demo.settings.model_copy(update={"workspace": ws.root, "graph_backend": backend})
    if backend == "neo4j":
        require_neo4j()
        build_graph(settings, ws, backend="neo4j", mode="full")
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        persons = [r[0] for r in lake.con.execute("""SELECT l.master_id FROM res_link l JOIN dwd_person_record p
            ON p.record_id = l.member_id WHERE p.id_number IS NOT NULL AND p.staff_no IS NOT NULL
              AND l.entity_type = 'Person'
            GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2""").fetchall()]
    app = create_app(settings)
    with serve(app) as url:
        served = Api(url, app, ws, settings, persons, backend)
        # The Cypher workers start on first use (a process each, the analyst projection loaded):
        # started here, so that no test's request waits on that under a loaded machine.
        warm = httpx.post(f"{url}/cypher", json={"query": "RETURN 1 AS one"}, headers=served.headers("analyst"),
                          timeout=120)
        assert warm.status_code == 200, warm.text
        yield served


def pytest_terminal_summary(terminalreporter):
    """How many tests ran on the real Neo4j: a backend that quietly stopped running shows here."""
    counts = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        reports = terminalreporter.stats.get(outcome, [])
        counts[outcome] = sum(1 for r in reports if r.when in ("call", "setup") and "neo4j" in r.keywords
                              and (outcome != "passed" or r.when == "call"))
    terminalreporter.write_line("Neo4j-backed tests: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
