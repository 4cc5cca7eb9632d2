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
from collections import deque
from collections.abc import Callable


class _Batch:
    """Rows that commit in one transaction; their requests wait on its event, not on each other."""

    __slots__ = ("rows", "done", "error")

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, write: Callable[[list[dict]], None], max_batch: int = 500):
        self._write = write
        self._max_batch = max_batch
        # Only the writer waits on this condition: a request wakes the writer and nobody else (a
        # notify_all per row woke every waiting request, each to find its row not yet committed).
        self._work = threading.Condition()
        self._batches: deque[_Batch] = deque()  # the last one is open for new rows
        self._thread: threading.Thread | None = None

    def submit(self, row: dict, timeout: float = 30.0) -> None:
        """Returns once `row` is committed; raises what the commit raised."""
        with self._work:
            if not self._batches or len(self._batches[-1].rows) >= self._max_batch:
                self._batches.append(_Batch())
            batch = self._batches[-1]
            batch.rows.append(row)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
                self._thread.start()
            self._work.notify()
        if not batch.done.wait(timeout):
            raise TimeoutError("the access log did not commit in time")
        if batch.error is not None:
            raise batch.error

    def _run(self) -> None:
        while True:
            with self._work:
                if not self._work.wait_for(lambda: self._batches, timeout=5.0):
                    self._thread = None
                    return
                batch = self._batches.popleft()  # closed from now on: new rows open the next batch
            try:
                self._write(batch.rows)
            except Exception as exc:  # every request in the batch hears of it
                batch.error = exc
            batch.done.set()
