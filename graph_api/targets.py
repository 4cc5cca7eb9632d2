"""Where a graph build is written, one class per backend (the storage side; Cypher lives in dialects).

Ladybug: every build is a new database file; a patch starts from a file copy of the served build,
so the served file is never written and the switch stays atomic. Neo4j Community has one database:
a full build clears and reloads it, a patch writes to it in place.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import GraphStore, open_store


class BuildTarget(ABC):
    backend: str

    def __init__(self, settings: Settings, workspace: Workspace):
        self.settings, self.workspace = settings, workspace

    @abstractmethod
    def fresh(self, build_id: str) -> tuple[GraphStore, str | None]:
        """An empty store for a full build, and its path if it has one."""

    @abstractmethod
    def copy_of(self, pointer: dict, build_id: str) -> tuple[GraphStore, str | None]:
        """A writable store holding the served build, for a patch."""

    # The analyst projection (graph_api.analyst_graph): a second graph per build, where the backend
    # can hold one beside the full graph. None: this backend writes no analyst graph.
    def fresh_analyst(self, build_id: str) -> tuple[GraphStore, str] | None:
        """An empty store for the analyst projection of a full build."""
        return None

    def analyst_copy_of(self, pointer: dict, build_id: str) -> tuple[GraphStore, str] | None:
        """A writable copy of the served build's analyst graph, for a patch."""
        return None

    @property
    def writes_analyst(self) -> bool:
        return False

    def prune(self, keep: set[str | None]) -> None:
        """Removes builds nobody serves any more (by default there is nothing to remove)."""


class LadybugTarget(BuildTarget):
    backend = "ladybug"

    @property
    def directory(self) -> Path:
        return self.workspace.graph_dir / "ladybug"

    def _open(self, path: Path) -> GraphStore:
        return open_store(self.settings, backend="ladybug", ladybug_path=path)

    def fresh(self, build_id: str) -> tuple[GraphStore, str | None]:
        path = self.directory / f"{build_id}.lbdb"
        return self._open(path), str(path)

    def copy_of(self, pointer: dict, build_id: str) -> tuple[GraphStore, str | None]:
        return self._copy(pointer["path"], self.directory / f"{build_id}.lbdb")

    def fresh_analyst(self, build_id: str) -> tuple[GraphStore, str]:
        path = self.directory / f"{build_id}.analyst.lbdb"
        return self._open(path), str(path)

    def analyst_copy_of(self, pointer: dict, build_id: str) -> tuple[GraphStore, str]:
        return self._copy(pointer["analyst_path"], self.directory / f"{build_id}.analyst.lbdb")

    @property
    def writes_analyst(self) -> bool:
        return True

    def _copy(self, served: str, path: Path) -> tuple[GraphStore, str]:
        # A published build is closed and checkpointed (no WAL), and only ever opened read-only again.
        shutil.copyfile(served, path)
        return self._open(path), str(path)

    def prune(self, keep: set[str | None]) -> None:
        """Deletes every build file but the ones kept (the new build and the one a server may still
        be answering from, each with its analyst graph `<build>.analyst.lbdb`, which the pattern
        matches too). Builds that were killed half-way are never published: they go."""
        for build in self.directory.glob("build-*.lbdb"):
            if str(build) not in keep:
                for f in (build, build.with_suffix(".lbdb.wal"), build.with_suffix(".lbdb.shadow")):
                    f.unlink(missing_ok=True)


class Neo4jTarget(BuildTarget):
    """Neo4j Community has one database: no analyst graph beside it (analysts' Cypher is refused)."""

    backend = "neo4j"

    def fresh(self, build_id: str) -> tuple[GraphStore, str | None]:
        store = open_store(self.settings, backend="neo4j")
        store.clear()  # type: ignore[attr-defined]
        return store, None

    def copy_of(self, pointer: dict, build_id: str) -> tuple[GraphStore, str | None]:
        return open_store(self.settings, backend="neo4j"), None


TARGETS: dict[str, type[BuildTarget]] = {t.backend: t for t in (LadybugTarget, Neo4jTarget)}


def build_target(settings: Settings, workspace: Workspace, backend: str) -> BuildTarget:
    return TARGETS[backend](settings, workspace)
