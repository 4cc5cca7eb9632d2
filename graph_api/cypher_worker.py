"""Analysts' ad-hoc Cypher in worker processes: a crash, a memory bomb or a runaway query costs one
worker, never the API.

Ladybug runs inside the process that calls it: a query that segfaults the library
(`RETURN date('0001-01-01') - interval('1 day')`) or asks for gigabytes (`RETURN range(1, 50000000)`)
would take the server with it. So the API's ad-hoc queries run here instead:

- a small pool (`cypher_workers`) of child processes, started lazily, one query per worker at a time;
  the API's own trusted reads stay in-process on `ServedGraph`;
- each worker is a fresh interpreter (`python -m graph_api.cypher_worker`, exec'd, never a fork of
  the server, which holds Ladybug, DuckDB and threads; and not multiprocessing's spawn either, whose
  preparation step re-imports the server's `__main__`, the whole CLI, into every worker). It opens
  the graph file read-only and keeps it open until the build changes;
- once the graph is open the worker limits its own address space (`RLIMIT_AS`) to what it uses then
  plus `cypher_worker_memory_mb / 2`, and gives Ladybug's buffer pool the other half: a memory bomb
  fails inside the worker (Ladybug's "buffer pool is full", a MemoryError, or the kernel). Its CPU
  time is limited per query (`RLIMIT_CPU`, a backstop), and it runs at a lower priority than the
  server (`nice`), so the API's own reads keep a core;
- Ladybug's own query timeout stops a query cleanly; the parent also waits only that long plus a
  grace, then kills the worker (SIGKILL) and starts another next time;
- rows are converted where they are read (the dialect's `to_python`, then pydantic's JSON encoding,
  which is what FastAPI would apply to them), reading stops at the row cap, and an answer whose JSON
  passes `cypher_max_answer_bytes` is stopped there (AnswerTooLarge): the server never holds more.

Messages are length-prefixed JSON over two pipes (never pickle: the parent must not execute what a
worker sends).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the worker process imports no more than it needs
    from campus_kg.settings import Settings

_HEADER = struct.Struct("!Q")
_STARTUP_TIMEOUT_S = 60.0  # a fresh interpreter importing Ladybug, on a busy machine
_GRACE_S = 2.0  # past Ladybug's own timeout: the worker's reply, or opening a new build
_RECYCLE_AFTER = 500  # queries per worker before a fresh one: no slow growth survives for long
_WORKER_NICENESS = 10


# ---- what a query can end in ----------------------------------------------------------------------
class CypherWorkerError(RuntimeError):
    """A query the workers did not answer; `str()` is the message for the caller."""


class QueryRefused(CypherWorkerError):
    """The database refused the query (a parse or binder error, a write on the read-only file)."""


class QueryTimedOut(CypherWorkerError):
    """The query ran past the timeout: Ladybug stopped it, or the worker was killed."""


class QueryOutOfMemory(CypherWorkerError):
    """The query needed more memory than a worker may use; the worker survived or was replaced."""


class WorkerCrashed(CypherWorkerError):
    """The worker died under the query (a crash in the database library, or the kernel killed it)."""


class AnswerTooLarge(CypherWorkerError):
    """The answer's JSON passed the byte cap; reading stopped there."""


class WorkersBusy(CypherWorkerError):
    """No worker came free in time."""


class GraphFileUnavailable(CypherWorkerError):
    """The worker could not open the graph file (removed, unreadable, not a Ladybug database)."""


@dataclass
class WorkerAnswer:
    columns: list[str]
    rows: list[dict[str, Any]]  # JSON values: what the API sends (dates as ISO text, ...)
    truncated: bool  # more rows existed than the row cap


# ---- framing ----------------------------------------------------------------------------------------
def _encode(message: dict[str, Any], raw_rows: list[bytes] | None = None) -> bytes:
    """A framed message; TypeError for a value JSON cannot carry."""
    body = json.dumps(message, ensure_ascii=False).encode()
    if raw_rows is not None:  # rows already JSON: splice them in rather than decode and encode again
        body = body[:-1] + b', "rows": [' + b", ".join(raw_rows) + b"]}"
    return _HEADER.pack(len(body)) + body


def _send(fd: int, message: dict[str, Any] | bytes, raw_rows: list[bytes] | None = None) -> None:
    data = message if isinstance(message, bytes) else _encode(message, raw_rows)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, missing = [], n
    while missing:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float | None, max_bytes: int | None = None) -> dict[str, Any]:
    (length,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if max_bytes is not None and length > max_bytes:
        raise EOFError  # not a message this protocol sends: treat the worker as broken
    return json.loads(_read_exact(fd, length, deadline))


# ---- the worker process -----------------------------------------------------------------------------
def _status_bytes(field: str) -> int:
    """VmSize (address space) or VmRSS (resident memory) of this process."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _set_soft_limit(kind: int, value: int | None) -> None:
    """Sets the soft limit (None: as high as the hard limit); the hard one stays, so it can rise again."""
    hard = resource.getrlimit(kind)[1]
    if value is None or (hard != resource.RLIM_INFINITY and value > hard):
        value = hard
    resource.setrlimit(kind, (value, hard))


def _next_power_of_two(n: int) -> int:
    return 1 << max(n - 1, 1).bit_length()


class _GraphFile:
    """The worker's open graph, and the address-space limit that goes with it."""

    def __init__(self, memory_mb: int):
        self.memory_bytes = memory_mb * 2**20
        self.key: tuple[str, str] | None = None
        self.db = self.conn = None

    def connection(self, path: str, build_id: str):
        import ladybug

        if self.key == (path, build_id):
            return self.conn
        self.close()
        # Opening maps the buffer pool and the database's address range: lift the limit, open, and
        # limit again from there.
        _set_soft_limit(resource.RLIMIT_AS, None)
        size = os.path.getsize(path)  # FileNotFoundError: the build was removed
        self.db = ladybug.Database(path, read_only=True, buffer_pool_size=self.memory_bytes // 2, max_num_threads=1,
                                   max_db_size=_next_power_of_two(max(2 * size, 2**26)))
        self.conn = ladybug.Connection(self.db)
        self.key = (path, build_id)
        _set_soft_limit(resource.RLIMIT_AS, _status_bytes("VmSize") + self.memory_bytes // 2)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.db is not None:
            self.db.close()
        self.db = self.conn = self.key = None


def _is_memory_error(message: str) -> bool:
    text = message.lower()
    return "unable to allocate" in text or "bad_alloc" in text or "mmap" in text or "out of memory" in text


def _answer(conn, request: dict[str, Any], to_python, to_json) -> tuple[dict[str, Any], list[bytes] | None]:
    """Runs one query: a reply message and the rows as JSON, or an error reply."""
    conn.set_query_timeout(int(request["timeout_ms"]))
    try:
        result = conn.execute(request["query"], request["parameters"])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the database says is the caller's answer
        message = str(exc)
        if "interrupted" in message.lower():
            return {"error": "timeout", "message": message}, None
        if _is_memory_error(message):
            return {"error": "memory", "message": message}, None
        return {"error": "refused", "message": message}, None
    if isinstance(result, list):  # several statements: Ladybug ran them all; answer none
        for r in result:
            r.close()
        return {"error": "refused", "message": "one statement per query"}, None
    try:
        columns = result.get_column_names()
        max_rows, max_bytes = request["max_rows"], request["max_answer_bytes"]
        rows: list[bytes] = []
        size = 0
        while result.has_next() and len(rows) < max_rows:
            values = result.get_next()
            row = to_json({c: to_python(v) for c, v in zip(columns, values, strict=True)}, fallback=str)
            size += len(row) + 2
            if size > max_bytes:
                return {"error": "too_large", "message": f"more than {max_bytes} bytes"}, None
            rows.append(row)
        truncated = result.has_next()
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        return {"error": "memory" if _is_memory_error(str(exc)) else "refused", "message": str(exc)}, None
    finally:
        result.close()
    return {"columns": columns, "truncated": truncated}, rows


def worker_main(read_fd: int, write_fd: int, memory_mb: int) -> None:
    # No PR_SET_PDEATHSIG: it fires when the *thread* that started the worker ends, and the server's
    # thread pool retires idle threads. A server that dies closes the pipe: the worker ends after the
    # query at hand, which RLIMIT_CPU bounds.
    os.nice(_WORKER_NICENESS)
    from pydantic_core import to_json

    from graph_api.store.dialects import LadybugDialect

    to_python = LadybugDialect().to_python
    graph = _GraphFile(memory_mb)
    _send(write_fd, {"ready": True, "pid": os.getpid()})
    while True:
        try:
            request = _receive(read_fd, None)
        except EOFError:
            return  # the server closed the pool
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime)
        # A backstop: this query's CPU time stops the worker if the parent's timer ever fails.
        _set_soft_limit(resource.RLIMIT_CPU, used + int(request["timeout_ms"] / 1000) + 10)
        try:
            try:
                conn = graph.connection(request["path"], request["build_id"])
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - removed, unreadable, not a database: the caller is told
                graph.close()
                reply, rows = {"error": "unavailable", "message": f"{request['path']}: {exc}"}, None
            else:
                reply, rows = _answer(conn, request, to_python, to_json)
        except MemoryError:
            # The heap is now suspect (a half-built list, fragments): say so and let a fresh worker follow.
            reply, rows = {"error": "memory", "message": "MemoryError", "exit": True}, None
        # Ladybug keeps the buffer pool it filled: a worker that grew past half its budget makes way for a
        # fresh one rather than sit on the memory while idle.
        if _status_bytes("VmRSS") > graph.memory_bytes // 2:
            reply["exit"] = True
        _send(write_fd, reply, rows)
        if reply.get("exit"):
            return


# ---- the pool, in the server ------------------------------------------------------------------------
def _worker_environment() -> dict[str, str]:
    """The server's environment without its settings: no token secret or database password where
    analysts' queries run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPUS_KG_", "NEO4J_"))}
    env["MALLOC_ARENA_MAX"] = "2"  # one query at a time: no per-thread malloc arenas
    return env


class _Worker:
    def __init__(self, memory_mb: int):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "graph_api.cypher_worker", str(to_child_r), str(from_child_w), str(memory_mb)],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env=_worker_environment(),
            )
        except BaseException:
            self._close_pipes()
            raise
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.served = 0
        try:
            ready = _receive(self._from_child, time.monotonic() + _STARTUP_TIMEOUT_S, max_bytes=1 << 10)
        except (TimeoutError, EOFError, ValueError):
            self.kill()
            raise WorkerCrashed("a Cypher worker did not start; see the server's log") from None
        self.pid = ready["pid"]

    def ask(self, request: bytes, deadline: float, max_reply_bytes: int) -> dict[str, Any]:
        """The worker's reply; TimeoutError past the deadline, EOFError if the worker died."""
        try:
            _send(self._to_child, request)
        except (BrokenPipeError, OSError):
            raise EOFError from None
        self.served += 1
        return _receive(self._from_child, deadline, max_reply_bytes)

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_reason(self) -> int | None:
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def _close_pipes(self, to_child_only: bool = False) -> None:
        # Each fd is closed once: a number closed twice may by then belong to another file of the server.
        if self._to_child >= 0:
            os.close(self._to_child)
            self._to_child = -1
        if self._from_child >= 0 and not to_child_only:
            os.close(self._from_child)
            self._from_child = -1

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def stop(self) -> None:
        """Closing its input ends the worker's loop; a stuck one is killed."""
        self._close_pipes(to_child_only=True)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class CypherWorkerPool:
    """At most `cypher_workers` worker processes, each running one query at a time."""

    def __init__(self, settings: Settings):
        self.size = settings.cypher_workers
        self.memory_mb = settings.cypher_worker_memory_mb
        self.max_answer_bytes = settings.cypher_max_answer_bytes
        self.timeout_ms = settings.query_timeout_ms
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.started = 0  # workers started, replacements included
        self.replaced = 0  # workers stopped by a query: a crash, a timeout, a memory bomb, or grown too big

    def run(self, graph_path: Path | str, build_id: str, query: str, parameters: dict[str, Any] | None = None, *,
            max_rows: int, timeout_ms: int | None = None, wait_s: float | None = None) -> WorkerAnswer:
        """Runs one read query on the graph file in a worker. Raises a CypherWorkerError subclass when
        the query did not produce an answer; the pool is usable afterwards whatever happened."""
        timeout_ms = timeout_ms or self.timeout_ms
        wait_s = timeout_ms / 1000 + _GRACE_S if wait_s is None else wait_s
        request = _encode({"path": str(graph_path), "build_id": build_id, "query": query,
                           "parameters": parameters or {}, "max_rows": max_rows,
                           "max_answer_bytes": self.max_answer_bytes, "timeout_ms": timeout_ms})
        # the reply carries at most max_answer_bytes of rows, or the database's message (which may quote the query)
        max_reply = self.max_answer_bytes + 4 * len(query) + (1 << 20)
        if not self._slots.acquire(timeout=wait_s):
            raise WorkersBusy(f"all {self.size} Cypher workers are busy; try again shortly")
        try:
            worker = self._take()
            try:
                reply = worker.ask(request, time.monotonic() + timeout_ms / 1000 + _GRACE_S, max_reply)
            except TimeoutError:
                self._discard(worker)
                raise QueryTimedOut(f"the query ran past {timeout_ms} ms and was stopped") from None
            except (EOFError, ValueError):
                code = worker.exit_reason()
                self._discard(worker)
                raise self._death(code) from None
            if reply.get("exit"):
                self._discard(worker, stop=True)
            else:
                self._give_back(worker)
        finally:
            self._slots.release()
        return self._result(reply, timeout_ms)

    def _result(self, reply: dict[str, Any], timeout_ms: int) -> WorkerAnswer:
        error = reply.get("error")
        if error is None:
            return WorkerAnswer(reply["columns"], reply["rows"], reply["truncated"])
        if error == "timeout":
            raise QueryTimedOut(f"the query ran past {timeout_ms} ms and was stopped")
        if error == "memory":
            raise QueryOutOfMemory(self._memory_message())
        if error == "too_large":
            raise AnswerTooLarge(f"the answer is larger than {self.max_answer_bytes} bytes "
                                 "(cypher_max_answer_bytes); return fewer rows or columns, or aggregate")
        if error == "unavailable":
            raise GraphFileUnavailable(f"the analyst graph could not be opened: {reply.get('message', '')}")
        raise QueryRefused(reply.get("message", ""))

    def _memory_message(self) -> str:
        return (f"the query needed more memory than a Cypher worker may use ({self.memory_mb} MiB, "
                "cypher_worker_memory_mb) and was stopped")

    def _death(self, code: int | None) -> CypherWorkerError:
        if code == -signal.SIGKILL:  # the kernel's OOM killer (the pool only kills on timeouts)
            return QueryOutOfMemory(self._memory_message())
        if code == -signal.SIGXCPU:
            return QueryTimedOut("the query used up its CPU time and was stopped")
        how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        return WorkerCrashed(f"the query crashed its worker ({how}) and was stopped; the server is unaffected")

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise WorkersBusy("the Cypher workers are shut down")
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                self.replaced += 1
                worker.kill()
            self.started += 1
        return _Worker(self.memory_mb)  # started outside the lock: it takes a moment

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and worker.served < _RECYCLE_AFTER:
                self._idle.append(worker)
                return
        worker.stop()

    def _discard(self, worker: _Worker, stop: bool = False) -> None:
        with self._lock:
            self.replaced += 1
        worker.stop() if stop else worker.kill()

    def worker_pids(self) -> list[int]:
        """The idle workers' process IDs (for tests and diagnostics)."""
        with self._lock:
            return [w.pid for w in self._idle]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


if __name__ == "__main__":
    worker_main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
