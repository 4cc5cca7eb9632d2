"""Where everything lives inside a workspace directory."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


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
    def graph_dir(self) -> Path:
        return self.root / "graph"

    @property
    def current_graph_pointer(self) -> Path:
        return self.graph_dir / "CURRENT.json"

    def read_current_graph(self) -> dict | None:
        """The graph the server should serve: written last, atomically, by a completed build."""
        try:
            return json.loads(self.current_graph_pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def publish_graph(self, pointer: dict) -> None:
        """Switch the served graph atomically: write a temp file, then rename over the pointer."""
        self.graph_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.graph_dir, prefix=".CURRENT.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(pointer, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.current_graph_pointer)
