"""The graph the API serves: whatever the workspace's CURRENT pointer names.

A completed build switches the pointer atomically; the next request sees the new build and the
previous store is closed. Until then every request is answered from the previous, complete graph.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import GraphStore, open_store


class GraphUnavailable(RuntimeError):
    pass


class ServedGraph:
    def __init__(self, settings: Settings, workspace: Workspace):
        self.settings = settings
        self.workspace = workspace
        self._lock = threading.Lock()
        self._store: GraphStore | None = None
        self._build_id: str | None = None

    @property
    def build_id(self) -> str | None:
        pointer = self.workspace.read_current_graph()
        return pointer["build_id"] if pointer else None

    def _current(self) -> GraphStore:
        pointer = self.workspace.read_current_graph()
        if pointer is None:
            raise GraphUnavailable("no graph has been built in this workspace yet (run `campus-kg build-graph`)")
        if self._store is None or pointer["build_id"] != self._build_id:
            new = open_store(self.settings, backend=pointer["backend"],
                             ladybug_path=Path(pointer["path"]) if pointer.get("path") else None, read_only=True)
            old, self._store, self._build_id = self._store, new, pointer["build_id"]
            if old is not None:
                old.close()
        return self._store

    def query(self, cypher: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        # One embedded connection, used by one request at a time.
        with self._lock:
            return self._current().query(cypher, parameters)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
