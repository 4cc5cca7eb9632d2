"""Steward decisions and approved corrections reach the served graph without a full rebuild.

A decision is written to the state database first (the crown jewels: append-only, applied again by
every later run). The applier then re-resolves and runs `build-graph` in auto mode in a background
thread: a small change patches a copy of the served graph and switches to it atomically. Requests
that arrive while it runs are coalesced into one more pass. If the lakehouse is busy (a pipeline
run holds the workspace lock), the pass waits its turn.

"A pass is needed" is kept on disk (one file per request in `<workspace>/apply-pending/`) until a
pass that started after it succeeds: an Applier created later on the same workspace (the server
restarted, or another worker) runs a pass left pending at once, so no decision waits for the next
pipeline run.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import threading
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from campus_kg.locking import workspace_lock
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
        left = self._pending_markers()
        if left:  # a previous process recorded decisions and stopped before applying them
            self._queue(f"{len(left)} pass(es) pending since before a restart: "
                        + "; ".join(_marker_reason(m) for m in left[:5]))

    @property
    def pending_dir(self) -> Path:
        return self.workspace.apply_pending

    def _pending_markers(self) -> list[Path]:
        return sorted(self.pending_dir.glob("*.json"))

    def _mark_pending(self, reason: str) -> None:
        """Written before the pass is queued: if the process stops now, the next one still runs it."""
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:6]}.json"
        tmp = self.pending_dir / f".{name}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"reason": reason, "requested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
                      fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.pending_dir / name)

    def request(self, reason: str) -> int:
        """Asks for one pass; returns its number (wait for `completed` to reach it)."""
        self._mark_pending(reason)
        return self._queue(reason)

    def _queue(self, reason: str) -> int:
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
            except Exception as exc:  # reported in the status; the markers stay for the next pass or start
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
        from graph_api.graph_build.run import build_graph

        quiet = Console(quiet=True)
        # Server processes (--workers) and pipeline runs take turns on the workspace: wait for ours
        # (a shutdown stops the wait; the pending markers keep the pass for the next start).
        with workspace_lock(self.workspace.root, "apply steward decisions", timeout_s=None,
                            give_up=lambda: self._closed):
            # Every request recorded before resolve reads the decisions is answered by this pass.
            answered = self._pending_markers()
            pipeline.run_resolve(self.workspace, quiet, self.settings)
            result = build_graph(self.settings, self.workspace)
            for marker in answered:
                marker.unlink(missing_ok=True)
        return result.build_id, "patch" if result.patched is not None else "full"


def _marker_reason(marker: Path) -> str:
    try:
        return json.loads(marker.read_text(encoding="utf-8"))["reason"]
    except (OSError, ValueError, KeyError):
        return marker.name
