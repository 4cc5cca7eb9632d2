"""Where everything lives inside a workspace directory."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Pointer keys that hold a file or folder of the build (analyst_path: the analyst projection;
# person_records_path: the person records GET /persons/{id} is served from, graph_api.graph_build.person_records).
POINTER_PATH_KEYS = ("path", "analyst_path", "person_records_path", "snapshot")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, root: Path | str) -> Workspace:
        ws = cls(Path(root).resolve())
        ws.root.mkdir(parents=True, exist_ok=True)
        return ws

    @property
    def lakehouse(self) -> Path:
        return self.root / "lakehouse.duckdb"

    @property
    def person_model(self) -> Path:
        """The trained Person linkage model (Splink JSON): match weights anyone can inspect."""
        return self.root / "model" / "person.json"

    @property
    def quality_report(self) -> Path:
        """The latest run's quality report (JSON), for the API: it never opens the lakehouse."""
        return self.root / "published" / "quality.json"

    @property
    def review_queue(self) -> Path:
        """Pairs for stewards to review, as resolution left them (Parquet), for the API."""
        return self.root / "published" / "review_queue.parquet"

    @property
    def apply_pending(self) -> Path:
        """Steward apply passes owed to the served graph, one file per request (graph_api.applier)."""
        return self.root / "apply-pending"

    @property
    def graph_dir(self) -> Path:
        return self.root / "graph"

    @property
    def current_graph_pointer(self) -> Path:
        return self.graph_dir / "CURRENT.json"

    def read_current_graph(self) -> dict | None:
        """The graph the server should serve: written last, atomically, by a completed build.

        Path-valued keys come back as absolute paths inside *this* workspace, so a copied or
        restored workspace serves its own graph files, never the original's."""
        try:
            pointer = json.loads(self.current_graph_pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        for key in POINTER_PATH_KEYS:
            if pointer.get(key):
                pointer[key] = str(self._from_pointer(pointer[key]))
        return pointer

    def publish_graph(self, pointer: dict) -> None:
        """Switch the served graph atomically: write a temp file, then rename over the pointer.
        Paths inside the workspace are stored relative to its root (see read_current_graph)."""
        stored = dict(pointer)
        for key in POINTER_PATH_KEYS:
            if stored.get(key):
                stored[key] = self._to_pointer(Path(stored[key]))
        self.graph_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.graph_dir, prefix=".CURRENT.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(stored, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.current_graph_pointer)

    def _to_pointer(self, path: Path) -> str:
        path = path if path.is_absolute() else self.root / path
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:  # outside the workspace (none of ours is): kept as it is
            return str(path)

    def _from_pointer(self, value: str) -> Path:
        path = Path(value)
        if not path.is_absolute():
            return self.root / path
        if path.is_relative_to(self.root):
            return path
        # An older pointer held absolute paths: in a copied or restored workspace they name the
        # original's files. Map them by their place under the original's graph/ folder.
        parts = path.parts
        for i in reversed(range(len(parts))):
            if parts[i] == self.graph_dir.name:
                here = self.graph_dir.joinpath(*parts[i + 1:])
                if here.exists():
                    return here
        return path
