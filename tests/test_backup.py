"""Backups restore: --verify rebuilds the graph from the archive and compares it with the live one."""

import shutil
import tarfile

import pytest
from typer.testing import CliRunner

from campus_kg.backup import RestoreError, restore
from campus_kg.cli import app
from campus_kg.state import StateStore
from campus_kg.workspace import Workspace


def test_backup_verify_and_restore(demo, tmp_path):
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    settings = demo.settings.model_copy(update={"workspace": ws.root})
    state = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value())
    state.add_decision("Person", "hr_staff:1", "jw_teachers:T1", "not_same", "steward-1", "a human decision")
    archive = tmp_path / "backup.tar.gz"
    result = CliRunner().invoke(app, ["backup", "--workspace", str(ws.root), "--out", str(archive), "--verify"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"lakehouse.duckdb", "state.sqlite", "manifest.json", "model/person.json"} <= names
    assert any(n.startswith("config/") and n.endswith("mapping.yaml") for n in names)

    target = Workspace.at(tmp_path / "restored")
    restore(archive, target)
    restored = StateStore(f"sqlite:///{target.root / 'state.sqlite'}", settings.token_secret.get_secret_value())
    assert [d["reason"] for d in restored.decisions("Person")] == ["a human decision"]
    with pytest.raises(RestoreError, match="already holds"):
        restore(archive, target)


def test_a_corrupted_archive_is_refused(demo, tmp_path):
    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    archive = tmp_path / "backup.tar.gz"
    assert CliRunner().invoke(app, ["backup", "--workspace", str(tmp_path / "ws"), "--out", str(archive)]
                              ).exit_code == 0
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / "model" / "person.json").write_text("{}", encoding="utf-8")
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for p in sorted(unpacked.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(unpacked)), recursive=False)
    with pytest.raises(RestoreError, match="person.json does not match"):
        restore(bad, Workspace.at(tmp_path / "target"))
