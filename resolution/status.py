"""Whether resolution completed: one `res_run` row per resolve, written `running` before it starts
(and committed at once), `complete` in the same transaction as its results, `failed` with the error
after a rollback. Exports and evaluation refuse a workspace whose newest resolve did not complete,
or whose records changed after it: empty master IDs and a perfect score over no records would
otherwise look like success."""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb

from ingest.lakehouse import Lakehouse, fetch_one


class ResolutionIncomplete(RuntimeError):
    """The workspace holds no complete, current resolution."""


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS res_run (
        resolve_id VARCHAR PRIMARY KEY, ingest_run VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
        status VARCHAR, message VARCHAR)""")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def begin(con: duckdb.DuckDBPyConnection, ingest_run: str) -> str:
    """Call outside the resolve transaction, so that a crash leaves the `running` row behind."""
    ensure_table(con)
    resolve_id = f"resolve-{_now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:4]}"
    con.execute("INSERT INTO res_run VALUES (?, ?, ?, NULL, 'running', NULL)", [resolve_id, ingest_run, _now()])
    return resolve_id


def finish(con: duckdb.DuckDBPyConnection, resolve_id: str, status: str = "complete",
           message: str | None = None) -> None:
    con.execute("UPDATE res_run SET status = ?, finished_at = ?, message = ? WHERE resolve_id = ?",
                [status, _now(), message, resolve_id])


def require_complete(lake: Lakehouse, workspace: str) -> None:
    """Raises ResolutionIncomplete naming what is wrong and the command that fixes it."""
    con = lake.con
    fix = f"run `campus-kg resolve --workspace {workspace}`"
    newest = fetch_one(con, "SELECT resolve_id, ingest_run, status, message, started_at FROM res_run "
                            "ORDER BY started_at DESC LIMIT 1") if lake.has_table("res_run") else None
    if newest is None:
        raise ResolutionIncomplete(f"resolution has not run on {workspace} 尚未完成实体解析: {fix}")
    resolve_id, ingest_run, status, message, started = newest
    if status != "complete":
        why = f" ({message})" if message else ""
        raise ResolutionIncomplete(f"the last resolution {resolve_id} (started {started:%Y-%m-%d %H:%M:%S} UTC) "
                                   f"did not complete 实体解析未完成: {status}{why}; {fix}")
    changed = fetch_one(con, """SELECT s.run_id FROM source_stats s JOIN ingest_run i USING (run_id)
        WHERE i.started_at > (SELECT started_at FROM ingest_run WHERE run_id = ?)
          AND s.new + s.changed + s.deleted > 0
        ORDER BY i.started_at DESC LIMIT 1""", [ingest_run])
    if changed:
        raise ResolutionIncomplete(f"ingest run {changed[0]} changed records after the last resolution "
                                   f"数据已变更、尚未重新解析; {fix}")
