"""A resolve reuses the Person model an earlier one trained while little has changed, and trains anew
when the records changed past `resolution_retrain_share`, a steward judged a pair, the code changed
or it is asked to; the links a reused model makes are the ones a trained model makes on the same
records. On a copy of the session's demo workspace, through the pipeline and the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campus_kg import pipeline
from campus_kg.cli import app
from campus_kg.state import StateStore
from campus_kg.workspace import Workspace
from ingest.lakehouse import Lakehouse
from resolution.model_reuse import basis_path
from tests.samples import demo_copy, persons_without_id_number, resolve_notes
from tests.test_graph_patch import QUIET


@pytest.fixture
def workspace(demo, tmp_path):
    ws, settings, mapping = demo_copy(demo, tmp_path)
    pipeline.run_resolve(ws, QUIET, settings, retrain=True)  # a model trained by this code, whatever built the demo
    return ws, settings, mapping


def _links(ws: Workspace) -> list[tuple]:
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        return lake.con.execute("SELECT member_id, master_id, entity_type FROM res_link ORDER BY ALL").fetchall()


def _first_note(ws: Workspace) -> str:
    """The person linkage note that says whether the latest resolve trained or reused the model."""
    return next(line for line in resolve_notes(ws.root).splitlines() if "模型训练" in line or "模型复用" in line)


def _rename_staff(mapping: Path, rows: int) -> None:
    """Renames the first `rows` persons of the HR export."""
    hr = next(mapping.parent.rglob("人事_*.csv"))
    lines = list(csv.reader(hr.read_text(encoding="gbk").splitlines()))
    name = lines[0].index("姓名")
    for row in lines[1:rows + 1]:
        row[name] = row[name] + "新"
    with open(hr, "w", encoding="gbk", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(lines)


def test_a_resolve_with_nothing_changed_reuses_the_model_and_links_alike(workspace):
    ws, settings, _ = workspace
    trained = _links(ws)
    model = ws.person_model.read_bytes()
    assert pipeline.run_resolve(ws, QUIET, settings).model_reused
    assert "model reused 模型复用" in _first_note(ws) and "0 changed since" in _first_note(ws)
    assert _links(ws) == trained
    assert ws.person_model.read_bytes() == model  # not saved again: the basis still names its training


def test_a_small_change_reuses_and_a_large_one_retrains(workspace):
    ws, settings, mapping = workspace
    _rename_staff(mapping, 3)
    pipeline.run_ingest(mapping, ws, QUIET)
    pipeline.run_resolve(ws, QUIET, settings)
    assert "model reused 模型复用" in _first_note(ws) and "3 changed since" in _first_note(ws), _first_note(ws)
    basis = json.loads(basis_path(ws.person_model).read_text(encoding="utf-8"))
    _rename_staff(mapping, 60)  # the changes add up since the model was trained
    pipeline.run_ingest(mapping, ws, QUIET)
    small_share = settings.model_copy(update={"resolution_retrain_share": 60 / basis["person_records"] - 0.001})
    assert not pipeline.run_resolve(ws, QUIET, small_share).model_reused
    assert "model trained 模型训练" in _first_note(ws) and "changed since the saved model" in _first_note(ws)
    again = json.loads(basis_path(ws.person_model).read_text(encoding="utf-8"))
    assert again["trained_run"] != basis["trained_run"]


def test_a_steward_judgement_or_other_code_retrains(workspace):
    ws, settings, _ = workspace
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        (a, _), (b, _) = persons_without_id_number(lake)
    StateStore(settings.state_database_url(), settings.token_secret.get_secret_value()).add_decision(
        "Person", a, b, "not_same", "steward-1", "two people")
    pipeline.run_resolve(ws, QUIET, settings)
    assert "steward judgements changed" in _first_note(ws)
    pipeline.run_resolve(ws, QUIET, settings)
    assert "model reused 模型复用" in _first_note(ws)
    basis = basis_path(ws.person_model)
    basis.write_text(basis.read_text(encoding="utf-8").replace('"code": "', '"code": "0'), encoding="utf-8")
    pipeline.run_resolve(ws, QUIET, settings)
    assert "resolution code or engine changed" in _first_note(ws)


def test_a_mapping_change_that_rewrites_values_retrains(workspace):
    """No row changed, so no record is in the change set; but the values are standardised otherwise."""
    ws, settings, mapping = workspace
    text = mapping.read_text(encoding="utf-8")
    assert "男: '1'" in text
    mapping.write_text(text.replace("男: '1'", "男: '2'", 1), encoding="utf-8")
    pipeline.run_ingest(mapping, ws, QUIET)
    pipeline.run_resolve(ws, QUIET, settings)
    assert "standardised otherwise" in _first_note(ws), _first_note(ws)


def test_resolve_retrain_trains_anew(workspace):
    ws, _, _ = workspace
    pipeline.run_resolve(ws, QUIET)
    assert "model reused 模型复用" in _first_note(ws)
    ran = CliRunner().invoke(app, ["resolve", "--workspace", str(ws.root), "--retrain"])
    assert ran.exit_code == 0, ran.output
    assert "asked to (--retrain)" in _first_note(ws)
