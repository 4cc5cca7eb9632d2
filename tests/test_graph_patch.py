"""Small changes patch the served graph, large ones rebuild it; a patched graph equals a rebuilt one."""

import csv
import random
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from campus_kg import pipeline
from campus_kg.cli import app
from campus_kg.state import StateStore
from campus_kg.workspace import Workspace
from graph_api.graph_build.run import PatchRefused, build_graph
from graph_api.store import open_store
from ingest.lakehouse import Lakehouse
from tests.graph_dump import dump
from tests.samples import demo_copy, persons_without_id_number

QUIET = Console(quiet=True)


def _change_sources(demo, ws: Workspace, settings) -> str:
    """One renamed person, one deleted HR row, and a steward's merge of two persons: a small change."""
    hr = next(Path(ws.root / "sources").rglob("人事_*.csv"))
    rows = list(csv.reader(hr.read_text(encoding="gbk").splitlines()))
    header = rows[0]
    picked = random.Random(5).sample(range(1, len(rows)), 2)
    renamed = rows[picked[0]]
    renamed[header.index("姓名")] = "欧阳新名"
    del rows[picked[1]]
    with open(hr, "w", encoding="gbk", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        (a, _), (b, _) = persons_without_id_number(lake)
    StateStore(settings.state_database_url(), settings.token_secret.get_secret_value()).add_decision(
        "Person", a, b, "same", "steward-1", "one person, two records")
    return renamed[header.index("工号")]


@pytest.fixture
def changed(demo, tmp_path):
    ws, settings, mapping = demo_copy(demo, tmp_path)
    staff_no = _change_sources(demo, ws, settings)
    pipeline.run_ingest(mapping, ws, QUIET)
    pipeline.run_resolve(ws, QUIET, settings)
    return ws, settings, staff_no


def _dump(path: str, settings) -> dict:
    with open_store(settings, backend="ladybug", ladybug_path=Path(path), read_only=True) as store:
        return dump(store)


def test_a_small_change_patches_and_equals_a_full_rebuild(changed):
    ws, settings, staff_no = changed
    served_before = ws.read_current_graph()
    patched = build_graph(settings, ws)
    assert patched.patched is not None, patched.plan.reason
    pointer = ws.read_current_graph()
    assert pointer["mode"] == "patch" and pointer["patched_from"] == served_before["build_id"]
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        records = lake.con.execute("SELECT count(*) FROM dwd_record").fetchall()[0][0]
    assert 0 < patched.plan.records <= settings.graph_patch_max_share * records
    # the patch loaded only a small part of the graph again
    assert patched.patched["Statement"] < patched.nodes["Statement"] / 10
    assert Path(served_before["path"]).exists(), "the build the server answers from is never written"
    assert Path(served_before["analyst_path"]).exists() and patched.analyst_path == pointer["analyst_path"]

    rebuilt = build_graph(settings, ws, mode="full")
    assert rebuilt.patched is None
    patched_graph, rebuilt_graph = _dump(patched.path, settings), _dump(rebuilt.path, settings)
    assert patched_graph.keys() == rebuilt_graph.keys()
    for key in rebuilt_graph:
        assert patched_graph[key] == rebuilt_graph[key], key
    names = {row[0]: row for row in patched_graph["Person"]}
    assert any("欧阳新名" in row for row in names.values())
    # the analyst projection is patched alike (deleting by its HMAC'd statement IDs)
    patched_analyst, rebuilt_analyst = _dump(patched.analyst_path, settings), _dump(rebuilt.analyst_path, settings)
    assert patched_analyst.keys() == rebuilt_analyst.keys()
    for key in rebuilt_analyst:
        assert patched_analyst[key] == rebuilt_analyst[key], key
    assert not {row[0] for row in patched_analyst["Statement"]} & {row[0] for row in patched_graph["Statement"]}


def test_a_large_change_rebuilds_and_patch_mode_refuses_it(changed):
    ws, settings, _ = changed
    strict = settings.model_copy(update={"graph_patch_max_share": 0.0001})
    with pytest.raises(PatchRefused, match="graph_patch_max_share"):
        build_graph(strict, ws, mode="patch")
    result = build_graph(strict, ws)
    assert result.patched is None and "patch limit 0.01%" in result.plan.reason
    assert ws.read_current_graph()["mode"] == "full"


def test_build_graph_command_reports_the_mode(changed):
    ws, _, _ = changed
    runner = CliRunner()
    out = runner.invoke(app, ["build-graph", "--workspace", str(ws.root), "--mode", "patch"])
    assert out.exit_code == 0, out.output
    assert "patched" in out.output
    out = runner.invoke(app, ["build-graph", "--workspace", str(ws.root), "--mode", "sideways"])
    assert out.exit_code == 2 and "--mode must be one of" in out.output
