"""Backups that really restore: everything the graph is rebuilt from, in one archive.

An archive holds the lakehouse (raw ODS, DWD, resolution), the state database (steward decisions,
corrections, tokens, access log), the trained model, the mapping files the runs used, the steward
apply passes still owed to the graph, and a manifest with each file's SHA-256 and the entity
counts. The graph itself is not in it: it is derived, and `--verify` proves so by restoring into a
scratch workspace, rebuilding the graph there, and comparing entity counts and a checksum of the
graph with the live workspace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import open_store
from ingest.lakehouse import Lakehouse
from ontology.model import load_ontology
from resolution.model_reuse import basis_path

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entity_counts(workspace: Workspace) -> dict[str, int]:
    with Lakehouse(workspace.lakehouse, read_only=True) as lake:
        return dict(lake.con.execute("""SELECT entity_type, count(DISTINCT master_id) FROM res_link
            GROUP BY 1 ORDER BY 1""").fetchall())


def graph_checksum(settings: Settings, workspace: Workspace) -> str:
    """SHA-256 over every master node's ID and properties, in order, in the served graph."""
    pointer = workspace.read_current_graph()
    if pointer is None:
        raise LookupError(f"no graph built in {workspace.root}")
    ont = load_ontology()
    h = hashlib.sha256()
    with open_store(settings, backend=pointer["backend"], ladybug_path=Path(pointer["path"]) if pointer.get("path")
                    else None, read_only=True) as store:
        for cls in sorted(ont.master_classes(), key=lambda c: c.name):
            props = sorted(p.name for p in ont.class_properties(cls.name))
            rows = store.query(f"MATCH (n:{cls.name}) RETURN " + ", ".join(f"n.{p} AS {p}" for p in props)
                               + " ORDER BY n.id")
            for row in rows:
                h.update(json.dumps([cls.name, *(str(row[p]) for p in props)], ensure_ascii=False).encode())
    return h.hexdigest()


def backup(settings: Settings, workspace: Workspace, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        with Lakehouse(workspace.lakehouse) as lake:
            lake.con.execute("CHECKPOINT")  # everything in the file, nothing left in the WAL
            mappings = [Path(p) for (p,) in lake.con.execute(
                "SELECT DISTINCT mapping_path FROM ingest_run WHERE mapping_path <> ''").fetchall()]
        shutil.copy2(workspace.lakehouse, staging / "lakehouse.duckdb")
        state = workspace.root / "state.sqlite"
        if state.exists():  # SQLite's online backup: consistent even while the API writes
            with sqlite3.connect(state) as src, sqlite3.connect(staging / "state.sqlite") as dst:
                src.backup(dst)
        if workspace.person_model.exists():
            (staging / "model").mkdir()
            shutil.copy2(workspace.person_model, staging / "model" / workspace.person_model.name)
            basis = basis_path(workspace.person_model)  # what it was trained on: a restore may reuse it too
            if basis.exists():
                shutil.copy2(basis, staging / "model" / basis.name)
        # Steward apply passes the graph still owes: a server on the restored workspace runs them.
        for marker in sorted(workspace.apply_pending.glob("*.json")):
            (staging / marker.parent.name).mkdir(exist_ok=True)
            shutil.copy2(marker, staging / marker.parent.name / marker.name)
        (staging / "config").mkdir()
        for i, mapping in enumerate(m for m in mappings if m.exists()):
            shutil.copy2(mapping, staging / "config" / f"{i:02d}-{mapping.name}")
        files = {str(p.relative_to(staging)): _sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
        manifest = {"created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "workspace": str(workspace.root), "files": files, "entities": entity_counts(workspace),
                    "mappings": [str(m) for m in mappings]}
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        with tarfile.open(out, "w:gz") as tar:
            for p in sorted(staging.rglob("*")):
                tar.add(p, arcname=str(p.relative_to(staging)), recursive=False)
    return manifest


class RestoreError(RuntimeError):
    pass


def restore(archive: Path, workspace: Workspace, force: bool = False) -> dict:
    """Unpacks an archive into a workspace, checking every file against the manifest."""
    if workspace.lakehouse.exists() and not force:
        raise RestoreError(f"{workspace.root} already holds a lakehouse; restore into an empty workspace "
                           "or pass --force")
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive, "r:gz") as tar:
        tar.extractall(tmp, filter="data")  # refuses absolute paths, links out of the tree, devices
        staging = Path(tmp)
        manifest = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
        for name in manifest["files"]:  # the manifest is data from the archive: it names files inside it only
            inside = (staging / name).resolve()
            if Path(name).is_absolute() or ".." in Path(name).parts or not inside.is_relative_to(staging.resolve()):
                raise RestoreError(f"{archive}: the manifest names {name!r}, outside the archive; refused")
        for name, digest in manifest["files"].items():
            if _sha256(staging / name) != digest:
                raise RestoreError(f"{archive}: {name} does not match its checksum in the manifest")
        for name in manifest["files"]:
            target = workspace.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staging / name, target)
    return manifest


@dataclass
class Verification:
    ok: bool
    entities_live: dict[str, int]
    entities_restored: dict[str, int]
    checksum_live: str
    checksum_restored: str


def verify(settings: Settings, workspace: Workspace, archive: Path) -> Verification:
    """Restores into a scratch workspace, rebuilds the graph there and compares it with the live one."""
    from graph_api.graph_build.run import build_graph

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Workspace.at(Path(tmp) / "ws")
        restore(archive, scratch)
        scratch_settings = settings.model_copy(update={"workspace": scratch.root})
        build_graph(scratch_settings, scratch, backend="ladybug")
        restored_counts, restored_sum = entity_counts(scratch), graph_checksum(scratch_settings, scratch)
    live_counts, live_sum = entity_counts(workspace), graph_checksum(settings, workspace)
    return Verification(live_counts == restored_counts and live_sum == restored_sum, live_counts, restored_counts,
                        live_sum, restored_sum)
