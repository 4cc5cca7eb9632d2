"""The graph the API serves: whatever the workspace's CURRENT pointer names.

A completed build switches the pointer atomically; the next request sees the new build. Requests
already running on the previous build finish there; the previous store closes when the last of
them returns. Until a build completes every request is answered from the previous, complete graph.
Ladybug is opened read-only: the database itself refuses writes, whatever the query says.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.graph_build.person_records import FormerId, PersonRecords
from graph_api.store import GraphStore, PersonRead, open_store


class GraphUnavailable(RuntimeError):
    pass


class NoPersonRecords(LookupError):
    """The served build has no person records (a build made before they existed): read the graph."""


class _Build:
    """One opened build and the requests using it."""

    def __init__(self, build_id: str, store: GraphStore, records: PersonRecords | None = None):
        self.build_id, self.store, self.records = build_id, store, records
        self.users = 0
        self.superseded = False
        self.memo: dict[str, OrderedDict[Hashable, Any]] = {}
        self.memo_lock = threading.Lock()


class ServedGraph:
    def __init__(self, settings: Settings, workspace: Workspace):
        self.settings = settings
        self.workspace = workspace
        self._lock = threading.Lock()
        self._build: _Build | None = None
        self._pointer_stamp: tuple[int, int] | None = None
        self._pointer: dict | None = None
        # Stat'ed on every lease (several per request): the path built once, not per call.
        self._pointer_path = os.fspath(workspace.current_graph_pointer)

    def _read_pointer(self) -> dict | None:
        """The CURRENT pointer, read again only when the file changed (it is replaced, never edited)."""
        try:
            st = os.stat(self._pointer_path)
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self._pointer_stamp:
            self._pointer, self._pointer_stamp = self.workspace.read_current_graph(), stamp
        return self._pointer

    @property
    def build_id(self) -> str | None:
        pointer = self._read_pointer()
        return pointer["build_id"] if pointer else None

    @contextmanager
    def _lease(self):
        with self._lock:
            pointer = self._read_pointer()
            if pointer is None:
                raise GraphUnavailable("no graph has been built in this workspace yet (run `campus-kg build-graph`)")
            if self._build is None or pointer["build_id"] != self._build.build_id:
                records = _open_records(pointer)
                try:
                    store = open_store(self.settings, backend=pointer["backend"],
                                       ladybug_path=Path(pointer["path"]) if pointer.get("path") else None,
                                       read_only=True, connections=self.settings.graph_connections,
                                       neo4j_slot=pointer.get("neo4j_slot", "primary"))
                except Exception as exc:  # a missing or broken file is "unavailable" (503), not a 500
                    if records is not None:
                        records.close()
                    raise GraphUnavailable(f"the served graph {pointer['build_id']} cannot be opened: {exc}") from None
                old, self._build = self._build, _Build(pointer["build_id"], store, records)
                if old is not None:
                    old.superseded = True
                    self._close_if_idle(old)
            build = self._build
            build.users += 1
        try:
            yield build
        finally:
            with self._lock:
                build.users -= 1
                self._close_if_idle(build)

    @staticmethod
    def _close_if_idle(build: _Build) -> None:
        if build.superseded and build.users == 0:
            build.store.close()
            if build.records is not None:
                build.records.close()

    def query(self, cypher: str, parameters: dict[str, Any] | None = None,
              max_rows: int | None = None) -> list[dict[str, Any]]:
        with self._lease() as build:
            return build.store.query(cypher, parameters, max_rows)

    def person_read(self, person_id: str) -> PersonRead:
        """A master person's whole record in one store call (GraphStore.person_read)."""
        with self._lease() as build:
            return build.store.person_read(person_id)

    def stored_person(self, master_id: str) -> tuple | None:
        """A master person's precomputed record (graph_api.graph_build.person_records.PersonRecords.person) in the
        served build's artefact; NoPersonRecords when the build has none."""
        with self._lease() as build:
            if build.records is None:
                raise NoPersonRecords(build.build_id)
            return build.records.person(master_id)

    def stored_former_id(self, requested: str) -> FormerId | None:
        with self._lease() as build:
            if build.records is None:
                raise NoPersonRecords(build.build_id)
            return build.records.former(requested)

    def memo(self, key: Hashable, compute: Callable[[], Any], cache: str = "lookups",
             limit: int | None = None) -> Any:
        """A value computed once per served build: a build never changes, so the value stays exact
        until the next build is served (the memo goes with the old build; a value computed while the
        builds switched lands in the old one's memo, never in the new one's). Each named cache keeps
        at most `limit` entries, dropping the least recently used."""
        with self._lease() as build:
            pass
        with build.memo_lock:
            entries = build.memo.setdefault(cache, OrderedDict())
            if key in entries:
                entries.move_to_end(key)
                return entries[key]
        value = compute()
        with build.memo_lock:
            entries[key] = value
            while limit is not None and len(entries) > limit:
                entries.popitem(last=False)
        return value

    def close(self) -> None:
        with self._lock:
            if self._build is not None:
                self._build.superseded = True
                self._close_if_idle(self._build)
                self._build = None


def _open_records(pointer: dict) -> PersonRecords | None:
    """The build's person records; None for a build made before them (served from the graph)."""
    path = pointer.get("person_records_path")
    if not path:
        return None
    try:
        return PersonRecords(path)
    except Exception as exc:  # the pointer names it, so it was complete: missing now is "unavailable"
        raise GraphUnavailable(f"the person records of {pointer['build_id']} cannot be opened: {exc}") from None
