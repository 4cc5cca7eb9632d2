"""A full Neo4j build by offline import (`neo4j_import_dir`: the local tools/neo4j-server replaces the
standby's store) holds exactly the graph a build with UNWIND holds — the load docker-compose's servers
get: every node and relationship, every property, typed alike."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from campus_kg.workspace import Workspace
from graph_api.graph_build.run import build_graph
from graph_api.store import open_store
from tests.backends import require_neo4j

pytestmark = pytest.mark.neo4j


def _import_dir() -> Path:
    require_neo4j()
    directory = os.environ.get("NEO4J_IMPORT_DIR")
    if not directory:
        pytest.fail("NEO4J_IMPORT_DIR is not set: start Neo4j with tools/neo4j-server/neo4j.sh (make neo4j-up)")
    return Path(directory)


def _graph(settings, slot: str) -> tuple[list, list]:
    """Every node and relationship of a slot with its properties, as plain Python values, sorted."""
    with open_store(settings, backend="neo4j", neo4j_slot=slot) as store:
        nodes = store.query("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
        rels = store.query("MATCH (a)-[r]->(b) RETURN type(r) AS type, a.id AS a, b.id AS b, properties(r) AS props")
    def typed(props: dict) -> tuple:  # the type too: 1 == 1.0 == True in Python
        return tuple(sorted((k, type(v).__name__, v) for k, v in props.items()))
    return (sorted(((r["labels"], typed(r["props"])) for r in nodes), key=repr),
            sorted(((r["type"], r["a"], r["b"], typed(r["props"])) for r in rels), key=repr))


@pytest.mark.slow  # two full builds and every node and relationship read back: ~40-80 s on 2 cores
def test_offline_import_builds_the_graph_unwind_builds(demo, tmp_path):
    import_dir = _import_dir()
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    settings = demo.settings.model_copy(update={"workspace": ws.root, "graph_backend": "neo4j",
                                                "neo4j_import_dir": import_dir})
    imported = build_graph(settings, ws, backend="neo4j", mode="full")
    imported_slot = ws.read_current_graph()["neo4j_slot"]
    unwound = build_graph(settings.model_copy(update={"neo4j_import_dir": None}), ws, backend="neo4j", mode="full")
    unwound_slot = ws.read_current_graph()["neo4j_slot"]

    assert imported_slot != unwound_slot
    assert imported.nodes == unwound.nodes and imported.rels == unwound.rels
    nodes, rels = _graph(settings, imported_slot)
    assert len(nodes) == sum(imported.nodes.values()) and len(rels) == sum(imported.rels.values())
    assert (nodes, rels) == _graph(settings, unwound_slot)
    with open_store(settings, backend="neo4j", neo4j_slot=imported_slot) as store:  # created after the import
        constraints = store.query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")[0]["names"]
    assert "person_id_unique" in constraints
    assert not list((import_dir / str(urlsplit(settings.neo4j_uri).port)).glob("*.csv"))  # the server cleaned up


def test_the_server_refuses_an_import_request_naming_anything_but_inbox_csv_files():
    inbox = _import_dir() / str(urlsplit(os.environ["NEO4J_STANDBY_URI"]).port)
    (inbox / "RESULT").unlink(missing_ok=True)
    (inbox / "REQUEST.tmp").write_text("--nodes=Person=../../../etc/passwd\n")
    (inbox / "REQUEST.tmp").replace(inbox / "REQUEST")
    deadline = time.monotonic() + 30
    while not (inbox / "RESULT").exists():
        assert time.monotonic() < deadline, "the server did not answer"
        time.sleep(0.05)
    answer = (inbox / "RESULT").read_text()
    (inbox / "RESULT").unlink()
    assert answer.startswith("failed: refused import argument: --nodes=Person=../../../etc/passwd")
