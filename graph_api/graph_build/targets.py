"""Where a graph build is written, one class per backend (the storage side; Cypher lives in dialects).

Ladybug: every build is a new database file; a patch starts from a file copy of the served build,
so the served file is never written and the switch stays atomic. Neo4j: two servers (or databases)
take turns; a build loads the one not being served, then the pointer switches to it.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import GraphStore, GraphStoreError, open_store
from graph_api.store.factory import open_neo4j_import


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

    # The analyst projection (graph_api.graph_build.analyst_graph): a second graph per build, where the backend
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

    # A patch starts from a copy of the served build; a backend that cannot copy one builds whole.
    patchable = True

    def pointer_fields(self) -> dict:
        """What the served-graph pointer needs besides paths to open this build (Neo4j: its slot)."""
        return {}

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
    """Neo4j Community has one user database per server, so a build never writes the one being served:
    it clears and loads the other slot (`primary` = neo4j_uri, `standby` = neo4j_standby_uri, see
    graph_api.store.factory.neo4j_location), and the pointer names that slot once the load is
    complete. With `neo4j_import_dir` (the local tools/neo4j-server) the slot's store is replaced by an
    offline import instead, 3–4× faster than UNWIND (bench/RESULTS.md); docker-compose's servers,
    whose files a build cannot reach, load with UNWIND. Every Neo4j build is a full one: a patch would
    have to start from a copy of the served database. The analyst projection is an embedded Ladybug
    file beside it, as with the Ladybug backend, so analysts' Cypher runs in the same isolated workers
    whichever backend serves the API."""

    backend = "neo4j"
    patchable = False

    def __init__(self, settings: Settings, workspace: Workspace):
        super().__init__(settings, workspace)
        self._analyst = LadybugTarget(settings, workspace)
        served = workspace.read_current_graph() or {}
        serving = served.get("neo4j_slot", "primary") if served.get("backend") == "neo4j" else None
        self.slot = "standby" if serving == "primary" else "primary"

    def fresh(self, build_id: str) -> tuple[GraphStore, str | None]:
        if self.settings.neo4j_import_dir is not None:
            # The slot's store is replaced by an offline import when the build closes it; emptied now,
            # so a build killed half-way leaves an empty standby, as the UNWIND path does.
            store = open_neo4j_import(self.settings, self.slot)
            store.reset()  # type: ignore[attr-defined]
            return store, None
        store = open_store(self.settings, backend="neo4j", neo4j_slot=self.slot)
        store.clear()  # type: ignore[attr-defined]
        return store, None

    def copy_of(self, pointer: dict, build_id: str) -> tuple[GraphStore, str | None]:
        raise GraphStoreError("Neo4j builds are full builds into the standby; there is no copy to patch")

    def fresh_analyst(self, build_id: str) -> tuple[GraphStore, str]:
        return self._analyst.fresh_analyst(build_id)

    @property
    def writes_analyst(self) -> bool:
        return True

    def pointer_fields(self) -> dict:
        return {"neo4j_slot": self.slot}

    def prune(self, keep: set[str | None]) -> None:
        self._analyst.prune(keep)


TARGETS: dict[str, type[BuildTarget]] = {t.backend: t for t in (LadybugTarget, Neo4jTarget)}


def build_target(settings: Settings, workspace: Workspace, backend: str) -> BuildTarget:
    return TARGETS[backend](settings, workspace)
