"""One writer per workspace: an exclusive `flock` on `<workspace>/.lock`.

Everything that changes the lakehouse or the served graph (ingest, resolve, build-graph, run,
restore, quality, backup, demo and the API's steward apply pass) holds the lock for its whole
duration, so two of them can never interleave: two builds cannot prune each other's files, and an
ingest that finds a run still `running` knows that run's process is gone. The kernel releases a
`flock` when its holder dies, even by `kill -9`, so a crashed run never leaves the workspace locked.

The holder writes its pid, command and start time into the file, for the message a second run
prints. The lock is re-entrant within one thread (`run` holds it and calls ingest, resolve and
build, which take it too); another thread or process waits up to `timeout_s`, then gets
`WorkspaceBusy`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"
POLL_S = 0.05

_held = threading.local()  # workspace root -> depth, per thread


class WorkspaceBusy(RuntimeError):
    """Another campus-kg process (or thread) holds the workspace."""


def lock_path(root: Path) -> Path:
    return Path(root) / LOCK_FILE


def describe_holder(root: Path) -> str:
    """Who holds the lock, as its holder wrote it (best effort: the file may be mid-write)."""
    try:
        info = json.loads(lock_path(root).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another campus-kg run holds the workspace"
    return (f"another campus-kg run (pid {info.get('pid', '?')}, `{info.get('command', '?')}`, "
            f"since {info.get('since', '?')}) holds the workspace")


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    return _held.depths


@contextmanager
def workspace_lock(root: Path | str, command: str, timeout_s: float | None = 0,
                   give_up: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Holds the workspace exclusively. `timeout_s`: 0 fails at once, None waits for ever (until
    `give_up()` says stop, checked while waiting)."""
    root = Path(root).resolve()
    key, depths = str(root), _depths()
    if depths.get(key):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    root.mkdir(parents=True, exist_ok=True)
    # "a+": opening must not truncate what the holder wrote; we only write once we hold the lock.
    fh = open(lock_path(root), "a+", encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if give_up() or (deadline is not None and time.monotonic() >= deadline):
                    raise WorkspaceBusy(f"工作区正被占用 / {describe_holder(root)} {root}; wait for it to "
                                        "finish (a run killed with kill -9 releases the lock at once)") from None
                time.sleep(POLL_S)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "command": command,
                             "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
        fh.flush()
        depths[key] = 1
        try:
            yield
        finally:
            depths.pop(key, None)
            fh.seek(0)
            fh.truncate()  # nobody holds it now; the next holder writes its own line
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()
