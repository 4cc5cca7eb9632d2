"""Steward decisions and approved corrections reach the served graph without a full rebuild.

A decision is written to the state database first (the crown jewels: append-only, applied again by
every later run). The applier then re-resolves and runs `build-graph` in auto mode in a background
thread: a small change patches a copy of the served graph and switches to it atomically. Requests
that arrive while it runs are coalesced into one more pass. If the lakehouse is busy (a pipeline
run holds it), the pass fails, says so in its status, and the decision waits for the next run.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gc
import threading
import traceback
from dataclasses import asdict, dataclass, field

from rich.console import Console

from campus_kg.settings import Settings
from campus_kg.workspace import Workspace


@dataclass
class ApplyStatus:
    state: str = "idle"  # idle / queued / running / failed
    requested: int = 0  # passes asked for
    completed: int = 0  # passes finished (successfully or not)
    last_started: dt.datetime | None = None
    last_finished: dt.datetime | None = None
    last_build: str | None = None
    last_mode: str | None = None  # patch / full
    last_error: str | None = None
    reasons: list[str] = field(default_factory=list)


class Applier:
    def __init__(self, settings: Settings, workspace: Workspace):
        self.settings, self.workspace = settings, workspace
        self._cond = threading.Condition()
        self._status = ApplyStatus()
        self._pending: list[str] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def request(self, reason: str) -> int:
        """Asks for one pass; returns its number (wait for `completed` to reach it)."""
        with self._cond:
            self._pending.append(reason)
            self._status.requested += 1
            if self._status.state != "running":
                self._status.state = "queued"
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="campus-kg-applier", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._status.requested

    def status(self) -> dict:
        with self._cond:
            return asdict(self._status)

    def wait(self, number: int, timeout: float = 120) -> dict:
        """Blocks until pass `number` has finished (tests and `?wait=true` callers)."""
        with self._cond:
            self._cond.wait_for(lambda: self._status.completed >= number, timeout)
            return asdict(self._status)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._closed or not self._pending:
                    return
                reasons, self._pending = self._pending, []
                upto = self._status.requested
                self._status.state, self._status.reasons = "running", reasons
                self._status.last_started = dt.datetime.now(dt.UTC)
            error, build, mode = None, None, None
            try:
                build, mode = self._pass()
            except Exception as exc:  # reported in the status; the decisions stay for the next run
                error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            # A failed pass's frames may still hold the lakehouse open read-only; the next pass opens
            # it for writing, which DuckDB only allows once the old instance is gone.
            gc.collect()
            with self._cond:
                s = self._status
                s.completed = upto
                s.last_finished = dt.datetime.now(dt.UTC)
                s.last_error = error
                if build:
                    s.last_build, s.last_mode = build, mode
                s.state = "queued" if self._pending else ("failed" if error else "idle")
                self._cond.notify_all()

    def _pass(self) -> tuple[str, str]:
        from campus_kg import pipeline
        from graph_api.build import build_graph

        quiet = Console(quiet=True)
        # Server processes (--workers) take turns: one pass at a time holds the lakehouse.
        with open(self.workspace.root / ".apply.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pipeline.run_resolve(self.workspace, quiet, self.settings)
            result = build_graph(self.settings, self.workspace)
        return result.build_id, "patch" if result.patched is not None else "full"
