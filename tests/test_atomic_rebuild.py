"""A build killed with SIGKILL half-way never reaches the server; the next build succeeds. On each
backend: Ladybug writes a new file per build; Neo4j loads the standby server while the other serves."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from campus_kg import pipeline
from campus_kg.workspace import Workspace
from graph_api.app import create_app
from graph_api.graph_build.run import build_graph
from graph_api.store import open_store
from tests.backends import each_backend, require_neo4j
from tests.http_server import serve


def _node_count(settings, slot: str) -> int:
    with open_store(settings, backend="neo4j", neo4j_slot=slot) as store:
        return store.query("MATCH (n) RETURN count(n) AS n")[0]["n"]


@each_backend
def test_sigkill_during_build_graph_leaves_the_served_graph_alone(backend, demo, tmp_path):
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    settings = demo.settings.model_copy(update={"workspace": ws.root, "graph_backend": backend})
    if backend == "neo4j":
        require_neo4j()
        build_graph(settings, ws, backend="neo4j", mode="full")
        serving = ws.read_current_graph()["neo4j_slot"]
        standby = "standby" if serving == "primary" else "primary"
        served_nodes = _node_count(settings, serving)
    app = create_app(settings)
    with serve(app) as url:
        _, token = app.state.state_store.add_user("auditor", "auditor")
        headers = {"Authorization": f"Bearer {token}"}
        person = _a_person(ws)
        before = ws.read_current_graph()["build_id"]
        assert httpx.get(f"{url}/persons/{person}", headers=headers).status_code == 200

        existing = set((ws.graph_dir / "ladybug").glob("build-*.lbdb"))
        proc = subprocess.Popen([sys.executable, "-c", "from campus_kg.cli import app; app()", "build-graph",
                                 "--workspace", str(ws.root), "--mode", "full", "--backend", backend], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not set((ws.graph_dir / "ladybug").glob("build-*.lbdb")) - existing:
            assert proc.poll() is None, "the build finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(0.2)  # into the load
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

        # the pointer never moved; the server answers from the previous, complete graph (and its projection)
        served = ws.read_current_graph()
        assert served["build_id"] == before and Path(served["analyst_path"]).exists()
        if backend == "neo4j":  # the standby was being loaded: half a graph, which nobody serves
            assert served["neo4j_slot"] == serving and _node_count(settings, standby) < served_nodes
        r = httpx.get(f"{url}/persons/{person}", headers=headers)
        assert r.status_code == 200 and httpx.get(f"{url}/health").json()["graph_build"] == before
        partial = set((ws.graph_dir / "ladybug").glob("build-*.lbdb")) - existing

        # the next build succeeds, is served, and clears the half-written file away
        built = pipeline.run_build(settings, ws, Console(quiet=True), mode="full")
        assert httpx.get(f"{url}/health").json()["graph_build"] == built.build_id != before
        assert httpx.get(f"{url}/persons/{person}", headers=headers).status_code == 200
        assert not any(p.exists() for p in partial)
        assert Path(ws.read_current_graph()["analyst_path"]).name == f"{built.build_id}.analyst.lbdb"
        assert Path(served["analyst_path"]).exists()  # the build before stays: a server may still hold it


def _a_person(ws: Workspace) -> str:
    from ingest.lakehouse import Lakehouse

    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        return lake.con.execute("SELECT min(master_id) FROM res_link WHERE entity_type = 'Person'").fetchall()[0][0]
