"""The DuckDB lakehouse: raw ODS tables per source, standardised DWD tables, resolution outputs.

Layers (the provincial guide's ODS -> DWD): `ods_<source>` keeps every distinct version of every row
as read, all text (a row is stored again only when its content hash changes); `dwd_*` hold the
standardised current state that resolution reads. `change_set` says, per run and source, which
records are new, changed or deleted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from ontology.model import load_ontology

DUCK_TYPES = {"string": "VARCHAR", "date": "DATE", "timestamp": "TIMESTAMP", "int": "BIGINT",
              "double": "DOUBLE", "bool": "BOOLEAN"}


def fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """First row of a query. DuckDB 2 keeps a partly fetched result open and blocks the
    connection, so this reads the whole (small) result instead of calling fetchone()."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


# A statement's identity: the record that states it, the property, the standard and the original value.
STATEMENT_ID = ("md5(concat_ws(chr(31), s.record_id, s.property, COALESCE(s.value, ''), "
                "COALESCE(s.original, '')))")


def quote(identifier: str) -> str:
    """A column name from a source header, safe inside SQL."""
    return '"' + identifier.replace('"', '""') + '"'


# The record that owns a row of a record table (as `t`): a relationship a mention source's row states
# belongs to that row, not to the parent record it is about.
RELATION_OWNER = "COALESCE(t.stated_by, t.record_id)"


NEWER_RELATION_COLUMNS = ("stated_by", "mention_org")  # the last columns dwd_relation gained


def _owner(table: str) -> str:
    return RELATION_OWNER if table == "dwd_relation" else "t.record_id"


def dwd_table(entity_type: str) -> str:
    return f"dwd_{entity_type.lower()}_record"


def ods_table(source_name: str) -> str:
    return f"ods_{source_name}"


DEFAULT_MEMORY_LIMIT = "512MB"

# A run's status: running -> completed, completed_with_errors (a source was held back, keeping its
# previous state) or failed (an error stopped it, or it was found `running` after its process died).
# Only a finished run is ever "the latest run".
FINISHED_RUN_STATUSES = ("completed", "completed_with_errors")
# Ingest commits source by source, so a run that failed part way may still have brought the current
# version of some records (dwd_record.version_run). Every run a record points to needs its IngestRun
# node in the graph, whatever its status, or LOADED_IN has no end.
LINEAGE_RUNS_SQL = f"""SELECT run_id FROM ingest_run WHERE status IN {FINISHED_RUN_STATUSES}
    OR run_id IN (SELECT version_run FROM dwd_record)"""


class Lakehouse:
    def __init__(self, path: Path, *, read_only: bool = False, memory_limit: str = DEFAULT_MEMORY_LIMIT):
        self.path = Path(path)
        # DuckDB would otherwise take 80 % of RAM for its buffers; past the limit it spills to disk
        # next to the lakehouse, so a 1.5 M-record ingest stays inside a small machine's memory.
        self.con = duckdb.connect(str(self.path), read_only=read_only, config={
            "memory_limit": memory_limit, "preserve_insertion_order": False,
            "temp_directory": str(self.path.with_suffix(".tmp"))})
        if not read_only:
            self._ensure_tables()
        else:
            self._read_older_layout()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_older_layout(self) -> None:
        """A workspace written before mention sources and opened read-only (so not migrated, e.g.
        `build-graph` or `evaluate` right after an upgrade): a temporary view gives dwd_relation the
        newer columns, empty, for this connection only."""
        if not self.has_table("dwd_relation"):
            return
        have = {r[0] for r in self.con.execute("DESCRIBE dwd_relation").fetchall()}
        missing = [c for c in NEWER_RELATION_COLUMNS if c not in have]
        if missing:
            database = fetch_one(self.con, "SELECT current_database()")[0]
            added = "".join(f", NULL::VARCHAR AS {c}" for c in missing)
            self.con.execute(f"""CREATE OR REPLACE TEMP VIEW dwd_relation AS
                SELECT *{added} FROM {quote(database)}.main.dwd_relation""")

    def _ensure_tables(self) -> None:
        """Creates the tables, and adds columns a newer version declares to an older workspace's
        tables (new columns go at the end of a declaration, so positional inserts stay right)."""
        scratch = duckdb.connect()  # the declared shape, to compare the real table with

        def create(sql: str) -> None:
            self.con.execute(sql)
            scratch.execute(sql)
            table = sql.split("EXISTS", 1)[1].split("(", 1)[0].strip()
            have = {r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()}
            for name, kind, *_ in scratch.execute(f"DESCRIBE {table}").fetchall():
                if name not in have:
                    self.con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {kind}")

        create("""CREATE TABLE IF NOT EXISTS ingest_run (
            run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP, finished_at TIMESTAMP,
            mapping_path VARCHAR, mapping_sha256 VARCHAR, status VARCHAR, university VARCHAR, problem VARCHAR)""")
        create("""CREATE TABLE IF NOT EXISTS source_stats (
            run_id VARCHAR, source VARCHAR, system VARCHAR, table_name VARCHAR, department VARCHAR,
            entity_type VARCHAR, file VARCHAR, read BIGINT, loaded BIGINT, quarantined BIGINT,
            new BIGINT, changed BIGINT, deleted BIGINT, unchanged BIGINT, problem VARCHAR,
            data_as_of TIMESTAMP, held_back VARCHAR, kept BIGINT)""")
        create("""CREATE TABLE IF NOT EXISTS change_set (
            run_id VARCHAR, source VARCHAR, record_id VARCHAR, change VARCHAR)""")
        create("""CREATE TABLE IF NOT EXISTS quarantine (
            run_id VARCHAR, source VARCHAR, file VARCHAR, row_no BIGINT, field VARCHAR, reason VARCHAR,
            raw VARCHAR)""")
        create("""CREATE TABLE IF NOT EXISTS dwd_record (
            record_id VARCHAR PRIMARY KEY, source VARCHAR, system VARCHAR, table_name VARCHAR,
            entity_type VARCHAR, record_key VARCHAR, run_id VARCHAR, row_no BIGINT, row_hash VARCHAR,
            source_updated DATE, first_seen_run VARCHAR, version_run VARCHAR)""")
        create("""CREATE TABLE IF NOT EXISTS dwd_statement (
            record_id VARCHAR, property VARCHAR, column_name VARCHAR, value VARCHAR, original VARCHAR,
            flag VARCHAR, dimension VARCHAR)""")
        # Every value ever stated, content-hashed (followthemoney's statements): when it was first
        # and last seen, and the run that found it gone. The basis of lineage and as-of queries.
        create("""CREATE TABLE IF NOT EXISTS dwd_statement_history (
            statement_id VARCHAR, source VARCHAR, record_id VARCHAR, property VARCHAR,
            column_name VARCHAR, value VARCHAR, original VARCHAR, first_seen_run VARCHAR,
            last_seen_run VARCHAR, retired_run VARCHAR)""")
        # A mention source's row (docs/mapping.md) states a relationship of its parent's record
        # (record_id): `stated_by` is that row's record, which owns the relationship (RELATION_OWNER),
        # `mention_org` the unit the row gives the mentioned person. Both NULL for a record's own.
        create("""CREATE TABLE IF NOT EXISTS dwd_relation (
            record_id VARCHAR, rel_type VARCHAR, direction VARCHAR, target_type VARCHAR,
            match_on VARCHAR, target_value VARCHAR, target_keys VARCHAR, position INTEGER, properties JSON,
            stated_by VARCHAR, mention_org VARCHAR)""")
        create("""CREATE TABLE IF NOT EXISTS source_authority (
            source VARCHAR, property VARCHAR, rank INTEGER, PRIMARY KEY (source, property))""")
        create("""CREATE TABLE IF NOT EXISTS source_field (
            source VARCHAR, column_name VARCHAR, property VARCHAR, rank INTEGER, optional BOOLEAN)""")
        create("""CREATE TABLE IF NOT EXISTS source_system (
            system VARCHAR PRIMARY KEY, name VARCHAR, department VARCHAR)""")
        # What a source's last load was standardised with (ingest.load.standardisation_fingerprint):
        # while it holds, a row whose content hash has not changed need not be standardised again.
        create("""CREATE TABLE IF NOT EXISTS source_fingerprint (
            source VARCHAR PRIMARY KEY, fingerprint VARCHAR, run_id VARCHAR)""")
        ont = load_ontology()
        for cls in ont.master_classes():
            cols = ", ".join(f"{p.name} {DUCK_TYPES[p.datatype]}" for p in ont.class_properties(cls.name)
                             if p.name != cls.key)
            if "name" in cls.properties:  # pinyin / romanised match keys, `surname|given;...`
                cols += ", name_keys VARCHAR"
            create(f"CREATE TABLE IF NOT EXISTS {dwd_table(cls.name)} (record_id VARCHAR PRIMARY KEY, {cols})")
        scratch.close()

    # ---- runs ----------------------------------------------------------------------------------
    def begin_run(self, mapping_path: str, mapping_sha256: str, university: str | None = None) -> str:
        """Starts a run. The caller holds the workspace lock (campus_kg.locking), so a run still
        `running` belongs to a process that died: it is marked failed first."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        run_id = f"run-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:4]}"  # sorts by time
        self.con.execute("""UPDATE ingest_run SET status = 'failed', finished_at = ?,
            problem = 'interrupted: the run stopped before it finished (found by ' || ? || ')'
            WHERE status = 'running'""", [now, run_id])
        self.con.execute("""INSERT INTO ingest_run (run_id, started_at, finished_at, mapping_path, mapping_sha256,
            status, university) VALUES (?, ?, NULL, ?, ?, 'running', ?)""",
                         [run_id, now, mapping_path, mapping_sha256, university])
        return run_id

    def finish_run(self, run_id: str, status: str = "completed", problem: str | None = None) -> None:
        """status: completed, completed_with_errors (a source held back) or failed."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.con.execute("UPDATE ingest_run SET finished_at = ?, status = ?, problem = ? WHERE run_id = ?",
                         [now, status, problem, run_id])

    def latest_run(self) -> str | None:
        row = fetch_one(self.con, f"""SELECT run_id FROM ingest_run WHERE status IN {FINISHED_RUN_STATUSES}
            ORDER BY started_at DESC LIMIT 1""")
        return row[0] if row else None

    # ---- writing -------------------------------------------------------------------------------
    def ensure_ods(self, source_name: str, columns: list[str]) -> None:
        meta = "_run_id VARCHAR, _row_no BIGINT, _record_key VARCHAR, _row_hash VARCHAR"
        cols = ", ".join(f"{quote(c)} VARCHAR" for c in columns)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {ods_table(source_name)} ({meta}, {cols})")
        existing = {r[0] for r in self.con.execute(f"DESCRIBE {ods_table(source_name)}").fetchall()}
        for c in columns:  # a later export with a new column: widen the raw table, never drop data
            if c not in existing:
                self.con.execute(f"ALTER TABLE {ods_table(source_name)} ADD COLUMN {quote(c)} VARCHAR")

    def append(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        self.con.register("_incoming", data)
        try:
            cols = ", ".join(quote(c) for c in data.column_names)
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
        finally:
            self.con.unregister("_incoming")

    def register_source(self, source) -> None:
        """The source's system and its authority ranks (一数一源) as the mapping declares them now."""
        self.con.execute("INSERT OR REPLACE INTO source_system VALUES (?, ?, ?)",
                         [source.system, source.system_name, source.department])
        self.con.execute("DELETE FROM source_authority WHERE source = ?", [source.name])
        for prop, rank in source.authority.items():
            self.con.execute("INSERT INTO source_authority VALUES (?, ?, ?)", [source.name, prop, rank])
        self.con.execute("DELETE FROM source_field WHERE source = ?", [source.name])
        for column, rule in source.rules():
            self.con.execute("INSERT INTO source_field VALUES (?, ?, ?, ?, ?)",
                             [source.name, column, rule.property, source.rank(rule.property), rule.optional])

    def record_stats(self, run_id: str, source, stats) -> None:
        as_of = fetch_one(self.con, "SELECT max(source_updated) FROM dwd_record WHERE source = ?", [source.name])
        data_as_of = as_of[0] if as_of and as_of[0] else None
        if data_as_of is None and source.format != "sql" and Path(stats.file).exists():
            data_as_of = dt.datetime.fromtimestamp(Path(stats.file).stat().st_mtime)
        self.con.execute(
            """INSERT INTO source_stats (run_id, source, system, table_name, department, entity_type, file, read,
                loaded, quarantined, new, changed, deleted, unchanged, problem, data_as_of, held_back, kept)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [run_id, source.name, source.system, source.table, source.department, source.entity_type, stats.file,
             stats.read, stats.loaded, stats.quarantined, stats.new, stats.changed, stats.deleted, stats.unchanged,
             stats.problem, data_as_of, stats.held_back, stats.kept])

    def snapshot_source(self, source_name: str, *, copies: bool = True) -> None:
        """Remember the source's current records (key, hash, first seen) before a load replaces them,
        and (`copies`) a copy of their rows, for records whose new row is quarantined
        (`restore_records`). A load that replaces records one by one needs no copies."""
        self.con.execute("""CREATE OR REPLACE TEMP TABLE _prev AS
            SELECT record_id, record_key, row_hash, first_seen_run, version_run FROM dwd_record WHERE source = ?""",
                         [source_name])
        for table in self._record_tables() if copies else ():
            self.con.execute(f"""CREATE OR REPLACE TEMP TABLE _prev_{table} AS
                SELECT t.* FROM {table} t SEMI JOIN _prev p ON p.record_id = {_owner(table)}""")

    def _record_tables(self) -> list[str]:
        """Every table holding a record's current state, keyed by record_id."""
        return ["dwd_record", "dwd_statement", "dwd_relation",
                *(dwd_table(c.name) for c in load_ontology().master_classes())]

    def record_hashes(self, source_name: str) -> dict[str, str]:
        """record key -> content hash of the row, for the source's current records."""
        return dict(self.con.execute("SELECT record_key, row_hash FROM dwd_record WHERE source = ?",
                                     [source_name]).fetchall())

    def delete_records(self, record_ids: list[str]) -> None:
        """Removes these records from every record table: a load is about to write them again, or
        they are gone from their source."""
        if not record_ids:
            return
        self.con.register("_delete_ids", pa.table({"record_id": record_ids}))
        try:
            for table in self._record_tables():
                self.con.execute(f"DELETE FROM {table} t WHERE {_owner(table)} IN (SELECT record_id FROM _delete_ids)")
        finally:
            self.con.unregister("_delete_ids")

    def keep_unchanged(self, run_id: str, source_name: str, keys: list[str], row_nos: list[int]) -> None:
        """Records whose rows this load read unchanged and did not write again: they were read by
        this run, at these rows, as a load that wrote them again would say."""
        if not keys:
            return
        self.con.register("_unchanged", pa.table({"record_key": keys, "row_no": pa.array(row_nos, pa.int64())}))
        try:
            self.con.execute("""UPDATE dwd_record d SET run_id = ?, row_no = u.row_no FROM _unchanged u
                WHERE d.source = ? AND d.record_key = u.record_key""", [run_id, source_name])
        finally:
            self.con.unregister("_unchanged")

    def fingerprint(self, source_name: str) -> str | None:
        row = fetch_one(self.con, "SELECT fingerprint FROM source_fingerprint WHERE source = ?", [source_name])
        return row[0] if row else None

    def set_fingerprint(self, source_name: str, fingerprint: str | None, run_id: str) -> None:
        self.con.execute("DELETE FROM source_fingerprint WHERE source = ?", [source_name])
        if fingerprint is not None:
            self.con.execute("INSERT INTO source_fingerprint VALUES (?, ?, ?)", [source_name, fingerprint, run_id])

    def restore_records(self, record_ids: list[str]) -> int:
        """Puts the snapshot's version of these records back (a load quarantined their new rows:
        a record keeps its last good version). Returns how many records came back."""
        if not record_ids:
            return 0
        self.con.register("_restore_ids", pa.table({"record_id": record_ids}))
        try:
            for table in self._record_tables():
                self.con.execute(f"""INSERT INTO {table} SELECT t.* FROM _prev_{table} t
                    SEMI JOIN _restore_ids r ON r.record_id = {_owner(table)}""")
            return fetch_one(self.con, "SELECT count(*) FROM _prev SEMI JOIN _restore_ids USING (record_id)")[0]
        finally:
            self.con.unregister("_restore_ids")

    def would_delete(self, source_name: str) -> tuple[int, int]:
        """(records before the load, records the load would delete), inside the load's transaction."""
        return fetch_one(self.con, """SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
            SELECT 1 FROM dwd_record d WHERE d.record_id = p.record_id AND d.source = ?)) FROM _prev p""",
                         [source_name])

    def record_changes(self, run_id: str, source_name: str) -> dict[str, int]:
        """Compare the new load with the snapshot by content hash; keep raw rows only when new."""
        c = self.con
        c.execute("""CREATE OR REPLACE TEMP TABLE _diff AS
            SELECT COALESCE(n.record_id, p.record_id) AS record_id,
                   CASE WHEN p.record_id IS NULL THEN 'new' WHEN n.record_id IS NULL THEN 'deleted'
                        WHEN p.row_hash <> n.row_hash THEN 'changed' ELSE 'unchanged' END AS change,
                   p.first_seen_run, p.version_run
            FROM (SELECT record_id, row_hash FROM dwd_record WHERE source = ?) n
            FULL OUTER JOIN _prev p ON p.record_id = n.record_id""", [source_name])
        c.execute("INSERT INTO change_set SELECT ?, ?, record_id, change FROM _diff WHERE change <> 'unchanged'",
                  [run_id, source_name])
        # first_seen_run: when the record first appeared; version_run: when its current content did.
        # Only records this load wrote (first_seen_run still empty): one it kept still has both.
        c.execute("""UPDATE dwd_record SET first_seen_run = COALESCE(d.first_seen_run, dwd_record.run_id),
                version_run = CASE WHEN d.change = 'unchanged' THEN d.version_run ELSE dwd_record.run_id END
            FROM _diff d WHERE d.record_id = dwd_record.record_id AND dwd_record.source = ?
                AND dwd_record.first_seen_run IS NULL""", [source_name])
        if self.has_table(ods_table(source_name)):
            c.execute(f"""DELETE FROM {ods_table(source_name)} WHERE _run_id = ?
                AND (_record_key, _row_hash) IN (SELECT (record_key, row_hash) FROM _prev)""", [run_id])
        counts = dict(c.execute("SELECT change, count(*) FROM _diff GROUP BY change").fetchall())
        return {k: counts.get(k, 0) for k in ("new", "changed", "deleted", "unchanged")}

    def record_statement_history(self, run_id: str, source_name: str, *, only_changed: bool = False) -> None:
        """Extends the statement history with this run's load of one source (after record_changes).

        `only_changed`: the load wrote again only the records whose rows changed, and standardised
        them as the last load did (the same fingerprint), so the statements of every other record
        are the ones the history holds now: they were only seen again."""
        c = self.con
        touched = ""
        if only_changed:
            c.execute("""UPDATE dwd_statement_history h SET last_seen_run = ? WHERE h.source = ?
                AND h.retired_run IS NULL AND h.record_id NOT IN (SELECT record_id FROM _diff WHERE change <> 'unchanged')""",
                      [run_id, source_name])
            touched = "AND s.record_id IN (SELECT record_id FROM _diff WHERE change <> 'unchanged')"
        c.execute(f"""CREATE OR REPLACE TEMP TABLE _now AS
            SELECT {STATEMENT_ID} AS statement_id, s.record_id, s.property, s.column_name, s.value, s.original
            FROM dwd_statement s JOIN dwd_record r USING (record_id) WHERE r.source = ? {touched}""", [source_name])
        # Joins and anti-joins rather than IN lists: they stream and spill, and need no index. Only this
        # source's history can hold these statements (a statement ID covers its record's): the joins
        # hash that part, not the history of every source loaded before.
        c.execute("""UPDATE dwd_statement_history h SET last_seen_run = ?, retired_run = NULL
            FROM _now n WHERE h.statement_id = n.statement_id AND h.source = ?""", [run_id, source_name])
        c.execute("""INSERT INTO dwd_statement_history
            SELECT DISTINCT ON (n.statement_id) n.statement_id, ?, n.record_id, n.property, n.column_name, n.value,
                   n.original, ?, ?, NULL
            FROM _now n ANTI JOIN (SELECT statement_id FROM dwd_statement_history WHERE source = ?) h
                ON h.statement_id = n.statement_id""",
                  [source_name, run_id, run_id, source_name])
        c.execute(f"""CREATE OR REPLACE TEMP TABLE _gone AS
            SELECT h.statement_id FROM dwd_statement_history h ANTI JOIN _now n ON n.statement_id = h.statement_id
            WHERE h.source = ? AND h.retired_run IS NULL {touched.replace('s.record_id', 'h.record_id')}""",
                  [source_name])
        c.execute("""UPDATE dwd_statement_history h SET retired_run = ? FROM _gone g
            WHERE h.statement_id = g.statement_id AND h.source = ?""", [run_id, source_name])

    def record_keys(self, source_name: str) -> set[str]:
        """The record keys a source holds now."""
        return {k for (k,) in self.con.execute("SELECT record_key FROM dwd_record WHERE source = ?",
                                               [source_name]).fetchall()}

    def has_table(self, name: str) -> bool:
        return fetch_one(self.con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])[0] > 0

    def clear_source(self, source_name: str) -> None:
        """The DWD holds the current state: a source's rows are replaced by each full load."""
        ids = "SELECT record_id FROM dwd_record WHERE source = ?"
        ont = load_ontology()
        for cls in ont.master_classes():
            self.con.execute(f"DELETE FROM {dwd_table(cls.name)} WHERE record_id IN ({ids})", [source_name])
        self.con.execute(f"DELETE FROM dwd_statement WHERE record_id IN ({ids})", [source_name])
        self.con.execute(f"DELETE FROM dwd_relation t WHERE {_owner('dwd_relation')} IN ({ids})", [source_name])
        self.con.execute("DELETE FROM dwd_record WHERE source = ?", [source_name])
