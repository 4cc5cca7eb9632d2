"""Person records precomputed per build: the artefact `GET /persons/{id}` is served from.

Every graph build writes, beside the graph, a read-only SQLite file holding each master person's
whole record as `graph_api.person_view` assembles it from a store read, twice — as a reader of raw
values sees it and as a reader of masked values does (ontology/masking.py: the two kinds of viewer)
— plus the former IDs. Serving a record is then one indexed lookup instead of a graph read and its
assembly (bench/RESULTS.md, issue 14).

The parts of a record are computed set-wise from the same lakehouse tables and relationship frames
the graph is loaded from (graph_api.graph_build.run), and put together by the very function a live read uses
(`person_view.assemble_person_record`): tests/test_person_records.py checks every person's stored
record byte for byte against the live store read, on both backends.

A record is stored without its first three fields (`master_id`, `requested_id`, `status`): a former
ID answers with the record of the entity it was merged into, under its own `requested_id` and
`status: merged`, so those are written per request (`StoredPerson.body`).

Publication follows the graph's: the file is complete before the CURRENT pointer names it
(`person_records_path`), and a build never writes a file the pointer names (a patch copies the
served one and rewrites the persons it touches).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa
from pydantic_core import to_json

from campus_kg.workspace import Workspace
from graph_api.graph_build.patch import RECORD_LINKS_SQL, SNAPSHOT_SQL, _diff
from graph_api.store import PersonRead
from ingest.lakehouse import Lakehouse
from ontology.masking import SEES_SENSITIVE

FORMAT_VERSION = "2"
BATCH_PERSONS = 5_000  # persons assembled per batch: memory stays small at any scale
# Roles standing for the two kinds of viewer (ontology.masking.SEES_SENSITIVE decides which is which).
RAW_VIEWER, MASKED_VIEWER = "auditor", "analyst"
assert RAW_VIEWER in SEES_SENSITIVE and MASKED_VIEWER not in SEES_SENSITIVE

# The relationships a record shows from the person (graph_api.store.dialects.PERSON_PARTS), and the
# properties of the other end it reads.
RECORD_RELS = ("MEMBER_OF", "AUTHOR_OF", "LEADS", "CUSTODIAN_OF", "ADVISES")
REL_COLUMNS = ("role", "start_date", "end_date", "rank")
REL_TYPES = {"role": pa.string(), "start_date": pa.date32(), "end_date": pa.date32(), "rank": pa.int64()}
OTHER_COLUMNS = ("name", "title", "publication_year", "project_start", "funding", "asset_no", "original_value")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE person (master_id TEXT PRIMARY KEY, raw BLOB NOT NULL, masked BLOB NOT NULL,
                     raw_fields TEXT NOT NULL, masked_fields TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE former_id (id TEXT PRIMARY KEY, status TEXT, changed_at TEXT, merged_into TEXT) WITHOUT ROWID;
CREATE TABLE source_seen (source TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE, seen TEXT NOT NULL) WITHOUT ROWID;
"""

# When a value was last seen in its source (a field's `last_updated`) is, for every value a source
# states now, the start of the source's latest load: each load sees again all it still states. So a
# stored record holds a stand-in per source instead (a datetime in year 1, `slot` seconds in), and
# a read puts the source's latest load in its place (`source_seen`). A load that changed nothing in
# a person's records then leaves the stored record as it is, and a patch need not write it again.
STAND_IN_EPOCH = dt.datetime(1, 1, 1)
# Sources whose current statements were all last seen in one load (by construction, every source).
SEEN_ONCE_SQL = """SELECT h.source, min(l.started_at) AS seen FROM dwd_statement_history h
    JOIN ingest_run l ON l.run_id = h.last_seen_run WHERE h.retired_run IS NULL
    GROUP BY h.source HAVING count(DISTINCT h.last_seen_run) = 1"""


_LAST_UPDATED = b'"last_updated":'  # the stand-ins are replaced there only


def _stand_in(slot: int) -> dt.datetime:
    return STAND_IN_EPOCH + dt.timedelta(seconds=slot)


# ---- writing ----------------------------------------------------------------------------------
def records_path(workspace: Workspace, build_id: str) -> Path:
    return workspace.graph_dir / "records" / f"{build_id}.records.sqlite"


def write_person_records(duck: duckdb.DuckDBPyConnection, edges: list[tuple[str, str, str, pa.Table]], path: Path,
                         previous: str | None = None, scoped: bool = False) -> int:
    """Writes the artefact at `path` from the lakehouse (`duck`: a connection to it) and the build's
    relationship frames, and returns how many person records it (re)wrote.

    Full (`scoped` False, or no previous artefact): every master person. Patch: a copy of the
    `previous` artefact in which the persons the patch's scope tables (graph_api.graph_build.patch) touch, and
    the former IDs, are written again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, Path(f"{path}-journal")):
        stale.unlink(missing_ok=True)
    patch = scoped and previous is not None and _readable(Path(previous))
    if patch:
        shutil.copyfile(previous, path)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = OFF")  # an unpublished file: a failed build leaves it to prune
        con.execute("PRAGMA synchronous = OFF")
        if not patch:
            con.executescript(SCHEMA)
            con.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
        con.execute("BEGIN")
        seen = _source_slots(con, duck)
        parts = _RecordParts(duck, edges, "_scope_persons" if patch else None, seen)
        scoped_ids = duck.execute("SELECT id FROM _scope_persons").fetchall() if patch else []
        if scoped_ids:
            con.executemany("DELETE FROM person WHERE master_id = ?", scoped_ids)
        written = 0
        for rows in parts.batches():
            con.executemany("INSERT INTO person VALUES (?, ?, ?, ?, ?)", rows)
            written += len(rows)
        # A source no longer seen keeps its row: its slot is never given to another source.
        con.executemany("INSERT OR REPLACE INTO source_seen VALUES (?, ?, ?)",
                        [(source, slot, to_json(at).decode()) for source, (slot, at) in seen.items()])
        con.execute("DELETE FROM former_id")
        con.executemany("INSERT INTO former_id VALUES (?, ?, ?, ?)", _former_ids(duck))
        con.execute("COMMIT")
        con.execute("PRAGMA optimize")
    finally:
        con.close()
    with open(path, "rb+") as fh:  # on disk before the pointer names it
        os.fsync(fh.fileno())
    return written


def write_person_records_apart(lakehouse: Path, edges: list[tuple[str, str, str, pa.Table]], path: Path,
                               memory_limit: str, previous: str | None = None, scope: list[str] | None = None) -> int:
    """write_person_records on a read-only connection of its own to the lakehouse, so that it can run
    on another thread while the build loads the graph (Lakehouse gives each connection the views an
    older workspace's layout needs). `scope`: a patch's persons (scope_patched_persons, read on the
    build's connection, where the patch plan's tables are) to write again into a copy of `previous`."""
    with Lakehouse(lakehouse, read_only=True, memory_limit=memory_limit) as lake:
        if scope is None:
            return write_person_records(lake.con, edges, path)
        lake.con.register("_scope_ids", pa.table({"id": pa.array(scope, pa.string())}))
        lake.con.execute("CREATE OR REPLACE TEMP TABLE _scope_persons AS SELECT id FROM _scope_ids")
        return write_person_records(lake.con, edges, path, previous=previous, scoped=True)


def _source_slots(con: sqlite3.Connection, duck: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, dt.datetime]]:
    """source -> (its stand-in's slot, its latest load), for the sources seen in one load. A source
    keeps its slot from the artefact a patch copied (its records there hold that stand-in)."""
    slots = dict(con.execute("SELECT source, slot FROM source_seen").fetchall())
    out = {}
    for source, seen in duck.execute(SEEN_ONCE_SQL + " ORDER BY 1").fetchall():
        if source not in slots:
            slots[source] = max(slots.values(), default=0) + 1
        out[source] = (slots[source], seen)
    return out


def scope_patched_persons(lake: Lakehouse, edges: list[tuple[str, str, str, pa.Table]],
                          refreshed_sources: list[tuple[str, str, object]]) -> list[str]:
    """`_scope_persons`: every person whose record a patch changes — the persons in its scope (their
    links, attributes or relationships changed), the persons pointing to (or advised by) an entity
    whose attributes changed (its name or title shows in their record), and the persons with a record
    in a source whose statements' last_seen the patch moves, unless their stored record only holds the
    source's stand-in (SEEN_ONCE_SQL); returns their IDs. Uses plan_patch's scope tables and views."""
    con = lake.con
    _register_edges(con, edges)
    con.execute("CREATE OR REPLACE TEMP TABLE _refreshed (system VARCHAR, table_name VARCHAR)")
    if refreshed_sources:  # (DuckDB refuses executemany of nothing)
        con.executemany("INSERT INTO _refreshed VALUES (?, ?)", [(s, t) for s, t, _ in refreshed_sources])
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _changed_attributes AS SELECT DISTINCT master_id
        FROM ({_diff(SNAPSHOT_SQL['attributes'], '_before_attributes')})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_persons AS SELECT DISTINCT id FROM (
        SELECT id FROM _scope_masters WHERE entity_type = 'Person'
        UNION ALL SELECT "from" FROM _record_edges WHERE "to" IN (SELECT master_id FROM _changed_attributes)
        UNION ALL SELECT "to" FROM _record_edges WHERE rel_type = 'ADVISES' AND end_label = 'Person'
            AND "from" IN (SELECT master_id FROM _changed_attributes)
        UNION ALL SELECT l.master_id FROM ({RECORD_LINKS_SQL}) l JOIN dwd_record d ON d.record_id = l.member_id
            JOIN _refreshed f ON f.system = d.system AND f.table_name IS NOT DISTINCT FROM d.table_name
            WHERE l.entity_type = 'Person' AND d.source NOT IN (SELECT source FROM ({SEEN_ONCE_SQL})))
        WHERE id IS NOT NULL""")
    return [i for (i,) in con.execute("SELECT id FROM _scope_persons").fetchall()]


def _readable(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            return con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (FORMAT_VERSION,)
    except sqlite3.Error:
        return False


def _register_edges(con, edges: list[tuple[str, str, str, pa.Table]]) -> None:
    """`_record_edges`: the relationships a record shows, from the frames the graph is loaded from."""
    parts = []
    for rel_type, start, end, table in edges:
        if start != "Person" or rel_type not in RECORD_RELS or table.num_rows == 0:
            continue
        n = table.num_rows
        columns = {"rel_type": pa.array([rel_type] * n, pa.string()), "end_label": pa.array([end] * n, pa.string()),
                   "from": table["from"].cast(pa.string()), "to": table["to"].cast(pa.string())}
        for c in REL_COLUMNS:
            columns[c] = table[c] if c in table.column_names else pa.nulls(n, REL_TYPES[c])
        parts.append(pa.table(columns))
    con.execute("DROP TABLE IF EXISTS _record_edges")
    if not parts:
        con.execute("""CREATE TEMP TABLE _record_edges (rel_type VARCHAR, end_label VARCHAR, "from" VARCHAR,
            "to" VARCHAR, role VARCHAR, start_date DATE, end_date DATE, rank BIGINT)""")
        return
    con.register("_record_edges_arrow", pa.concat_tables(parts, promote_options="permissive"))
    con.execute("CREATE TEMP TABLE _record_edges AS SELECT * FROM _record_edges_arrow")
    con.unregister("_record_edges_arrow")


class _RecordParts:
    """The PersonRead of every person (or of `_scope_persons`), batch by batch, from the lakehouse."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, edges, only: str | None,
                 seen: dict[str, tuple[int, dt.datetime]]):
        # (graph_api.graph_build.run writes this artefact: imported here, not at the top)
        from graph_api.graph_build.run import STATEMENT_NODES_SQL, master_nodes_sql
        from graph_api.person_view import assemble_person_record, fields_returned

        self._assemble, self._fields = assemble_person_record, fields_returned
        self.con = con = duck
        _register_edges(con, edges)
        scope = f"AND master_id IN (SELECT id FROM {only})" if only else ""
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rec_person AS {master_nodes_sql('Person', scope)}")
        persons = "(SELECT id FROM _rec_person)"
        con.register("_rec_stand_ins", pa.table({"source": pa.array(list(seen), pa.string()),
                                                 "stand_in": pa.array([_stand_in(slot) for slot, _ in seen.values()],
                                                                      pa.timestamp("us"))}))
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rec_statements AS
            SELECT l.master_id AS person_id, s.stated_property AS property, s.value, s.chosen, s.rule, s.authority,
                   COALESCE(x.stand_in, s.last_seen) AS last_seen, r.record_id, r.system
            FROM dwd_statement_history h
            LEFT JOIN _rec_stand_ins x ON x.source = h.source
            JOIN res_link l ON l.member_id = h.record_id AND l.entity_type = 'Person'
            JOIN ({STATEMENT_NODES_SQL}) s ON s.id = h.statement_id
            JOIN dwd_record r ON r.record_id = h.record_id
            WHERE s.retired_at IS NULL AND s.value IS NOT NULL AND l.master_id IN {persons}
            ORDER BY person_id""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rec_sources AS
            SELECT l.master_id AS person_id, d.record_id, d.system, d.table_name, d.record_key, l.rule
            FROM ({RECORD_LINKS_SQL}) l JOIN dwd_record d ON d.record_id = l.member_id
            WHERE l.entity_type = 'Person' AND l.master_id IN {persons} ORDER BY person_id""")
        others = []
        for (label,) in con.execute("SELECT DISTINCT end_label FROM _record_edges ORDER BY 1").fetchall():
            have = set(con.sql(f"SELECT * FROM ({master_nodes_sql(label)}) LIMIT 0").columns)
            cols = ", ".join(f"{c}" if c in have else f"NULL AS {c}" for c in OTHER_COLUMNS)
            others.append(f"SELECT '{label}' AS label, id, {cols} FROM ({master_nodes_sql(label)})")
        empty = "SELECT NULL::VARCHAR AS label, NULL::VARCHAR AS id, " + ", ".join(
            f"NULL::VARCHAR AS {c}" for c in OTHER_COLUMNS) + " WHERE false"  # no edges: the columns all the same
        con.execute("CREATE OR REPLACE TEMP TABLE _rec_others AS " + (" UNION ALL BY NAME ".join(others) if others
                                                                       else empty))
        other_cols = ", ".join(f"x.{c} AS other_{c}" for c in OTHER_COLUMNS) if others else ""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rec_relationships AS
            SELECT e."from" AS person_id, e.rel_type, {", ".join(f"e.{c}" for c in REL_COLUMNS)},
                   e."to" AS other_id{", " + other_cols if other_cols else ""}
            FROM _record_edges e JOIN _rec_others x ON x.label = e.end_label AND x.id = e."to"
            WHERE e."from" IN {persons} ORDER BY person_id""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rec_advisors AS
            SELECT e."to" AS person_id, e."from" AS id, x.name AS title, e.role, e.start_date, e.end_date
            FROM _record_edges e JOIN _rec_others x ON x.label = 'Person' AND x.id = e."from"
            WHERE e.rel_type = 'ADVISES' AND e.end_label = 'Person' AND e."to" IN {persons} ORDER BY person_id""")
        self.systems = {r[0]: {"system": r[0], "name": r[1], "department": r[2]} for r in con.execute(
            "SELECT system, name, department FROM source_system ORDER BY 1").fetchall()}

    def _grouped(self, table: str, low: str, high: str) -> dict[str, list[dict]]:
        rows = self.con.sql(f"SELECT * FROM {table} WHERE person_id BETWEEN ? AND ?",
                            params=[low, high]).to_arrow_table().to_pylist()
        out: dict[str, list[dict]] = {}
        for row in rows:
            out.setdefault(row.pop("person_id"), []).append(row)
        return out

    def batches(self) -> Iterator[list[tuple]]:
        ids = [r[0] for r in self.con.execute("SELECT id FROM _rec_person ORDER BY id").fetchall()]
        for start in range(0, len(ids), BATCH_PERSONS):
            chunk = ids[start:start + BATCH_PERSONS]
            low, high = chunk[0], chunk[-1]
            nodes = self.con.sql("SELECT * FROM _rec_person WHERE id BETWEEN ? AND ?",
                                 params=[low, high]).to_arrow_table().to_pylist()
            statements, sources = self._grouped("_rec_statements", low, high), self._grouped("_rec_sources", low, high)
            relationships = self._grouped("_rec_relationships", low, high)
            advisors = self._grouped("_rec_advisors", low, high)
            rows = []
            for node in nodes:
                person = node["id"]
                rels = [{"rel": {"_LABEL": r["rel_type"], **{c: r[c] for c in REL_COLUMNS}},
                         "other": {"id": r["other_id"], **{c: r[f"other_{c}"] for c in OTHER_COLUMNS}}}
                        for r in relationships.get(person, [])]
                read = PersonRead({k: v for k, v in node.items() if v is not None}, statements.get(person, []),
                                  sources.get(person, []), rels, advisors.get(person, []))
                rows.append((person, *self._stored(person, read)))
            yield rows

    def _stored(self, person: str, read: PersonRead) -> tuple[bytes, bytes, str, str]:
        out = []
        for role in (RAW_VIEWER, MASKED_VIEWER):
            # Each assembly annotates the rows it reads (system names): a fresh copy per viewer.
            copy = PersonRead(read.person, [dict(s) for s in read.statements], read.sources, read.relationships,
                              read.advisors)
            record = self._assemble(self.systems, person, role, person, "active", copy)
            out.append((zlib.compress(_tail(record.model_dump_json().encode(), person), 1),
                        json.dumps(self._fields(record), ensure_ascii=False)))
        (raw, raw_fields), (masked, masked_fields) = out
        return raw, masked, raw_fields, masked_fields


def _head(master_id: str, requested: str, status: str) -> bytes:
    """The first three fields of a PersonRecord as pydantic writes them."""
    return (b'{"master_id":' + to_json(master_id) + b',"requested_id":' + to_json(requested)
            + b',"status":' + to_json(status) + b",")


def _tail(body: bytes, master_id: str) -> bytes:
    head = _head(master_id, master_id, "active")
    if not body.startswith(head):  # PersonRecord's first fields moved: the splice would be wrong
        raise RuntimeError(f"a person record does not start with {head!r}")
    return body[len(head):]


def _former_ids(duck: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Former master IDs as the graph holds them (run.graph_frames: FormerId, MERGED_INTO)."""
    return [(i, status, None if at is None else str(at), into) for i, status, at, into in duck.execute("""
        SELECT r.master_id, r.status, u.started_at,
               CASE WHEN r.status = 'merged' AND r.merged_into IN (SELECT master_id FROM res_link)
                    THEN r.merged_into END
        FROM res_master_registry r LEFT JOIN ingest_run u ON u.run_id = r.updated_run
        WHERE r.status <> 'active' ORDER BY 1""").fetchall()]


def prune_person_records(workspace: Workspace, keep: set[str | None]) -> None:
    """Deletes every artefact but the ones kept (the new build's and the ones a server may still read)."""
    for path in (workspace.graph_dir / "records").glob("build-*.records.sqlite*"):
        if str(path) not in keep:
            path.unlink(missing_ok=True)


# ---- reading ----------------------------------------------------------------------------------
class StoredPerson(NamedTuple):
    """A person's stored record, found by a current or former ID."""
    master_id: str
    status: str  # `active`, or `merged` for a former ID
    raw: bytes
    masked: bytes
    raw_fields: str
    masked_fields: str
    seen: tuple[tuple[bytes, bytes], ...] = ()  # (a source's stand-in, its latest load) as JSON

    def body(self, requested: str, sees_sensitive: bool) -> bytes:
        """The record as JSON, exactly as `PersonRecord.model_dump_json()` of a live read."""
        body = zlib.decompress(self.raw if sees_sensitive else self.masked)
        for stand_in, seen in self.seen:
            body = body.replace(stand_in, seen)
        return _head(self.master_id, requested, self.status) + body

    def fields(self, sees_sensitive: bool) -> list[str]:
        """What the access log says was read (person_view.fields_returned)."""
        return json.loads(self.raw_fields if sees_sensitive else self.masked_fields)


class FormerId(NamedTuple):
    status: str | None
    changed_at: str | None
    merged_into: str | None


class PersonRecords:
    """An opened artefact (read-only, immutable: no locks). One SQLite connection per thread."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if not _readable(Path(self.path)):
            raise FileNotFoundError(f"no person records of format {FORMAT_VERSION} at {self.path}")
        self._uri = f"file:{self.path}?mode=ro&immutable=1"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._seen: tuple[tuple[bytes, bytes], ...] | None = None

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def person(self, master_id: str) -> tuple | None:
        """(raw, masked, raw_fields, masked_fields, seen) of a master person (StoredPerson's fields), or None."""
        row = self._con().execute("SELECT raw, masked, raw_fields, masked_fields FROM person WHERE master_id = ?",
                                  (master_id,)).fetchone()
        return None if row is None else (*row, self.seen())

    def seen(self) -> tuple[tuple[bytes, bytes], ...]:
        """Each source's stand-in and its latest load, as a field's `last_updated` in a record's JSON
        (read once)."""
        if self._seen is None:
            self._seen = tuple((_LAST_UPDATED + to_json(_stand_in(slot)), _LAST_UPDATED + seen.encode())
                               for slot, seen in self._con().execute(
                                   "SELECT slot, seen FROM source_seen ORDER BY slot").fetchall())
        return self._seen

    def former(self, requested: str) -> FormerId | None:
        row = self._con().execute("SELECT status, changed_at, merged_into FROM former_id WHERE id = ?",
                                  (requested,)).fetchone()
        return FormerId(*row) if row else None

    def master_ids(self) -> list[str]:
        return [r[0] for r in self._con().execute("SELECT master_id FROM person ORDER BY 1").fetchall()]

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
