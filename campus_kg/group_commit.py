"""Group commit for the access log: many requests' rows in one transaction, each request waiting
until its own row is committed.

Every read of a person's record must be in the log before the answer leaves, so a request cannot
just queue its row and go. But a transaction per request makes server processes queue on the
database's write lock (SQLite's busy handler sleeps in steps of up to 100 ms). One writer thread
per process takes whatever rows are waiting, inserts them in one transaction, and wakes their
requests: under load the transactions grow, not their number.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class GroupCommitter:
    def __init__(self, write: Callable[[list[dict]], None], max_batch: int = 500):
        self._write = write
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[tuple[dict, list]] = []  # (row, [done flag, error])
        self._thread: threading.Thread | None = None

    def submit(self, row: dict, timeout: float = 30.0) -> None:
        """Returns once `row` is committed; raises what the commit raised."""
        outcome: list = [False, None]
        with self._cond:
            self._queue.append((row, outcome))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: outcome[0], timeout):
                raise TimeoutError("the access log did not commit in time")
        if outcome[1] is not None:
            raise outcome[1]

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._queue, timeout=5.0):
                    self._thread = None
                    return
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
            error = None
            try:
                self._write([row for row, _ in batch])
            except Exception as exc:  # every request in the batch hears of it
                error = exc
            with self._cond:
                for _, outcome in batch:
                    outcome[0], outcome[1] = True, error
                self._cond.notify_all()
