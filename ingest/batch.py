"""An entity source's loaded rows, standardised a batch at a time, column by column.

The row loop (`ingest.load._load_rows`) only reads a row, checks its key (empty, a formula,
a duplicate) and hashes it: nothing after that can quarantine a row of an entity source. The
rest happens here, once per batch of rows:

- each field's column is dictionary-encoded (Arrow) and standardised once per distinct cell (the
  per-source memo keeps what earlier batches worked out);
- DuckDB joins rows to their cells' parts to make the statements, picks each record's first value
  per property for the wide table, and cross-checks a record's ID number with its birth date and
  sex;
- Python is left only what is per record by nature: the name keys (pinyin) of a name, a name
  composed from its parts, and relationships with their edge properties.

What a batch writes is what `ingest.load._record_rows` writes for the same rows, row by row; that
path stays as the reference (tests/test_ingest_golden.py compares the two on messy data).
"""

from __future__ import annotations

import hashlib
from itertools import compress
from typing import TYPE_CHECKING

import pyarrow as pa

from ingest import standardise as std
from ingest.lakehouse import DUCK_TYPES, Lakehouse, dwd_table, ods_table, quote

if TYPE_CHECKING:
    from ingest.load import _SourceContext

BATCH_ROWS = 50_000
_ABSENT = object()  # a column a semi-structured record (JSON) leaves out, unlike an empty cell
# Order of a statement within its record: (field rule, part of the cell) as one sortable number.
_PART_BITS = 32
_TEMP_TABLES = ("_batch_rows", "_batch_cells", "_batch_parts", "_batch_ids", "_batch_names")


class RecordBatch:
    """Rows of one entity source that passed the key checks, waiting to be standardised; each
    batch replaces its records' earlier versions.

    `existing`: record key -> row hash of the source's records before this load. `fingerprint`:
    what this load standardises with (ingest.load.standardisation_fingerprint), `last_fingerprint`
    the one the source's records were standardised with (None: not known, or not all of them). The
    columns of the export belong to it too: a row's hash is of its cells, and a renamed column gives
    the same cells another meaning (JSON records hash their keys with their values). While the two
    agree, a row whose hash is its record's is not standardised or written again: its record stays
    as it is (`skip_unchanged`, settled by the first row)."""

    def __init__(self, sc: _SourceContext, lake: Lakehouse, existing: dict[str, str], fingerprint: str,
                 last_fingerprint: str | None):
        self.sc, self.lake = sc, lake
        self.existing = existing
        self.fingerprint, self.last_fingerprint = fingerprint, last_fingerprint
        self.skip_unchanged: bool | None = None  # settled by the first row
        self.ods_columns: set[str] = set()
        self.unchanged_keys: list[str] = []
        self.unchanged_row_nos: list[int] = []
        self._clear()

    def _clear(self) -> None:
        self.row_nos: list[int] = []
        self.keys: list[str] = []
        self.hashes: list[str] = []
        self.values: list[dict[str, str | None]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, row_no: int, key: str, row_hash: str, values: dict[str, str | None]) -> None:
        if self.skip_unchanged is None:
            if self.sc.source.format not in ("json", "jsonl"):
                header = "\0".join(values)
                self.fingerprint = hashlib.sha256(f"{self.fingerprint}\0{header}".encode()).hexdigest()
            self.skip_unchanged = self.fingerprint == self.last_fingerprint
        if self.skip_unchanged and self.existing.get(key) == row_hash:
            self.unchanged_keys.append(key)
            self.unchanged_row_nos.append(row_no)
            return
        self.row_nos.append(row_no)
        self.keys.append(key)
        self.hashes.append(row_hash)
        self.values.append(values)

    def flush(self) -> None:
        if not self.keys:
            return
        con = self.lake.con
        name = self.sc.source.name
        record_ids = [f"{name}:{k}" for k in self.keys]
        self.lake.delete_records([r for r, k in zip(record_ids, self.keys, strict=True) if k in self.existing])
        self._write_raw(record_ids)
        try:
            con.register("_batch_rows", pa.table({"row_idx": pa.array(range(len(record_ids)), pa.int64()),
                                                  "record_id": record_ids}))
            self._stage_statements()
            props = self._stage_wide()
            self._cross_check(props)
            self._write_records(props)
            self._write_relations(record_ids)
        finally:
            for table in _TEMP_TABLES:
                con.unregister(table)
            for table in ("_batch_stmt", "_batch_wide"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        self._clear()

    def finish(self, quarantined_keys: set[str]) -> tuple[int, str | None]:
        """After the last row: the records whose rows are gone are deleted, those whose rows were
        unchanged are marked read by this run. A record whose new row was quarantined keeps its
        last version. Returns how many did, and the fingerprint all of the source's records are now
        standardised with: None when a kept record was standardised otherwise (or no row was read),
        so that the next load standardises every row again."""
        self.flush()
        seen = self.sc.seen
        kept = [k for k in quarantined_keys - seen if k in self.existing]
        name = self.sc.source.name
        self.lake.delete_records([f"{name}:{k}" for k in self.existing if k not in seen and k not in quarantined_keys])
        self.lake.keep_unchanged(self.sc.run_id, name, self.unchanged_keys, self.unchanged_row_nos)
        alike = self.skip_unchanged or (self.skip_unchanged is False and not kept)
        return len(kept), (self.fingerprint if alike else None)

    # ---- the raw rows and the records' identity ------------------------------------------------
    def _write_raw(self, record_ids: list[str]) -> None:
        sc, n = self.sc, len(self.keys)
        source = sc.source
        columns = list(dict.fromkeys(c for values in self.values for c in values))
        if not self.ods_columns.issuperset(columns):
            self.ods_columns.update(columns)
            self.lake.ensure_ods(source.name, columns)  # the raw table widens for a new column, never drops one
        ods = {"_run_id": [sc.run_id] * n, "_row_no": self.row_nos, "_record_key": self.keys,
               "_row_hash": self.hashes}
        for column in columns:
            ods[column] = pa.array([values.get(column) for values in self.values], pa.string())
        self.lake.append(ods_table(source.name), pa.table(ods))
        updated = source.updated_column
        self.lake.append("dwd_record", pa.table({
            "record_id": record_ids, "source": [source.name] * n, "system": [source.system] * n,
            "table_name": [source.table] * n, "entity_type": [source.entity_type] * n, "record_key": self.keys,
            "run_id": [sc.run_id] * n, "row_no": pa.array(self.row_nos, pa.int64()), "row_hash": self.hashes,
            "source_updated": pa.array([sc.updated_date(values.get(updated)) if updated else None
                                        for values in self.values], pa.date32())}))

    # ---- statements ------------------------------------------------------------------------------
    def _stage_statements(self) -> None:
        """_batch_stmt: every part of every field's cell, as `_record_rows` states it."""
        sc, con = self.sc, self.lake.con
        cells, parts = [], {k: [] for k in ("rule_no", "code", "part_no", "property", "column_name", "value",
                                            "flag", "dimension")}
        for rule_no, ((column, rule, prop), memo) in enumerate(zip(sc.rules, sc.field_memos, strict=True)):
            raws = [values.get(column, _ABSENT) for values in self.values]
            rows = list(range(len(raws)))
            if rule.constant is None and any(raw is _ABSENT for raw in raws):
                present = [raw is not _ABSENT for raw in raws]
                raws, rows = list(compress(raws, present)), list(compress(rows, present))
            else:
                raws = [None if raw is _ABSENT else raw for raw in raws]
            if not raws:
                continue
            original = pa.array(raws, pa.string())
            encoded = original.dictionary_encode(null_encoding="encode")
            for code, raw in enumerate(encoded.dictionary.to_pylist()):
                for part_no, (_, text, flag, dimension) in enumerate(sc.field_parts(memo, raw, rule, prop)):
                    for k, v in zip(parts, (rule_no, code, part_no, prop.name, column, text, flag, dimension),
                                    strict=True):
                        parts[k].append(v)
            cells.append(pa.table({"rule_no": pa.array([rule_no] * len(raws), pa.int64()),
                                   "row_idx": pa.array(rows, pa.int64()),
                                   "code": encoded.indices.cast(pa.int64()), "original": original}))
        con.register("_batch_parts", pa.table({
            **{k: pa.array(v, pa.int64()) for k, v in parts.items() if k in ("rule_no", "code", "part_no")},
            **{k: pa.array(v, pa.string()) for k, v in parts.items() if k not in ("rule_no", "code", "part_no")}}))
        con.register("_batch_cells", pa.concat_tables(cells) if cells else pa.table({
            "rule_no": pa.array([], pa.int64()), "row_idx": pa.array([], pa.int64()),
            "code": pa.array([], pa.int64()), "original": pa.array([], pa.string())}))
        con.execute(f"""CREATE TEMP TABLE _batch_stmt AS
            SELECT c.row_idx, r.record_id, p.property, p.column_name, p.value, c.original, p.flag, p.dimension,
                   (c.rule_no << {_PART_BITS}) + p.part_no AS ordinal
            FROM _batch_cells c JOIN _batch_parts p ON p.rule_no = c.rule_no AND p.code = c.code
            JOIN _batch_rows r ON r.row_idx = c.row_idx""")

    # ---- the wide record -------------------------------------------------------------------------
    def _stage_wide(self) -> list[str]:
        """_batch_wide: per record, the first value of each property in field order (as text), the
        name composed from its parts where the record has none. Returns the properties."""
        sc, con = self.sc, self.lake.con
        props = list(dict.fromkeys(p.name for _, _, p in sc.rules))
        if "name" not in props and {"given_name", "family_name"} & set(props):
            props.append("name")
        firsts = "".join(f""", arg_min(s.value, s.ordinal) FILTER (WHERE s.property = '{p}' AND s.value IS NOT NULL)
                AS {quote(p)}""" for p in props)
        con.execute(f"""CREATE TEMP TABLE _batch_wide AS SELECT r.row_idx, r.record_id{firsts}
            FROM _batch_rows r LEFT JOIN _batch_stmt s ON s.row_idx = r.row_idx GROUP BY r.row_idx, r.record_id""")
        if "name" in props:
            self._name_and_keys(props)
        return props

    def _name_and_keys(self, props: list[str]) -> None:
        """A name composed from given + family name (stated as derived), and every name's match keys.
        Per record in Python: the keys are pinyin, and names rarely repeat."""
        from ingest.load import INFO

        sc, con = self.sc, self.lake.con
        parts = [p for p in ("given_name", "family_name") if p in props]
        wide = con.sql(f"SELECT row_idx, record_id, name{''.join(f', {p}' for p in parts)} FROM _batch_wide").to_arrow_table()
        row_idx, record_ids, names = (wide.column(c).to_pylist() for c in ("row_idx", "record_id", "name"))
        given = wide.column("given_name").to_pylist() if "given_name" in parts else [None] * len(names)
        family = wide.column("family_name").to_pylist() if "family_name" in parts else [None] * len(names)
        derived: dict[str, list] = {k: [] for k in ("record_id", "property", "column_name", "value", "original",
                                                    "flag", "dimension")}
        keys = []
        for i, name in enumerate(names):
            if name is None and (given[i] or family[i]):
                name = names[i] = std.compose_name(given[i], family[i])
                for k, v in zip(derived, (record_ids[i], "name", None, name, None,
                                          "derived from given_name + family_name", INFO), strict=True):
                    derived[k].append(v)
            if name is None:
                keys.append(None)
                continue
            raw = self.values[row_idx[i]].get(sc.name_column) if sc.name_column else None
            keys.append(sc.name_keys(raw or name, given[i], family[i]))
        con.register("_batch_names", pa.table({"row_idx": pa.array(row_idx, pa.int64()),
                                               "name": pa.array(names, pa.string()),
                                               "name_keys": pa.array(keys, pa.string())}))
        con.execute("ALTER TABLE _batch_wide ADD COLUMN name_keys VARCHAR")
        con.execute("""UPDATE _batch_wide w SET name = n.name, name_keys = n.name_keys FROM _batch_names n
            WHERE n.row_idx = w.row_idx""")
        if derived["record_id"]:
            self.lake.append("dwd_statement", pa.table({k: pa.array(v, pa.string()) for k, v in derived.items()}))

    def _cross_check(self, props: list[str]) -> None:
        """多源校核 within one record (as `ingest.load._cross_check`): a birth date or sex that
        disagrees with the one the record's ID number carries is flagged on its statements."""
        from ingest.load import _parsed_id_number

        checked = [p for p in ("birth_date", "sex") if p in props]
        if "id_number" not in props or not checked:
            return
        con = self.lake.con
        ids = [i for (i,) in con.execute("SELECT DISTINCT id_number FROM _batch_wide WHERE id_number <> ''")
               .fetchall()]
        parsed = [_parsed_id_number(i) for i in ids]
        con.register("_batch_ids", pa.table({
            "id_number": pa.array(ids, pa.string()),
            "birth_date": pa.array([p.birth_date.isoformat() if p.birth_date else None for p in parsed], pa.string()),
            "sex": pa.array([p.sex for p in parsed], pa.string())}))
        for prop in checked:
            col = quote(prop)
            # A month-only birth date agrees with any day of its month.
            con.execute(f"""UPDATE _batch_stmt s SET flag = 'disagrees with ID number (' || d.derived || ')',
                    dimension = 'consistency'
                FROM (SELECT w.row_idx, i.{col} AS derived FROM _batch_wide w JOIN _batch_ids i USING (id_number)
                      WHERE w.{col} IS NOT NULL AND i.{col} IS NOT NULL
                        AND CASE WHEN EXISTS (SELECT 1 FROM _batch_stmt m WHERE m.row_idx = w.row_idx
                                    AND m.property = '{prop}' AND m.flag = 'month_precision')
                                 THEN left(w.{col}, 7) <> left(i.{col}, 7) ELSE w.{col} <> i.{col} END) d
                WHERE s.row_idx = d.row_idx AND s.property = '{prop}' AND (s.dimension IS NULL OR s.dimension = 'info')""")

    # ---- writing -----------------------------------------------------------------------------------
    def _write_records(self, props: list[str]) -> None:
        sc, con = self.sc, self.lake.con
        con.execute("""INSERT INTO dwd_statement (record_id, property, column_name, value, original, flag, dimension)
            SELECT record_id, property, column_name, value, original, flag, dimension FROM _batch_stmt""")
        for shape_rule in sc.required:
            prop = shape_rule.property
            missing = f"w.{quote(prop)} IS NULL" if prop in props else "true"
            con.execute(f"""INSERT INTO dwd_statement (record_id, property, column_name, value, original, flag,
                    dimension)
                SELECT w.record_id, ?, NULL, NULL, NULL, ?, 'completeness' FROM _batch_wide w WHERE {missing}""",
                        [prop, f"SHACL {shape_rule.shape}: required"])
        table = dwd_table(sc.source.entity_type)
        have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        columns = [p for p in props if p in have] + (["name_keys"] if "name" in props and "name_keys" in have else [])
        typed = [f"CAST(w.{quote(c)} AS {DUCK_TYPES[sc.ont.prop(c).datatype] if c != 'name_keys' else 'VARCHAR'})"
                 for c in columns]
        con.execute(f"""INSERT INTO {table} (record_id{''.join(f', {quote(c)}' for c in columns)})
            SELECT w.record_id{''.join(f', {t}' for t in typed)} FROM _batch_wide w""")

    def _write_relations(self, record_ids: list[str]) -> None:
        from ingest.load import _edge_properties

        sc = self.sc
        out: dict[str, list] = {k: [] for k in ("record_id", "rel_type", "direction", "target_type", "match_on",
                                                "target_value", "target_keys", "position", "properties")}
        for rel, memo in zip(sc.source.relationships, sc.relation_memos, strict=True):
            for record_id, values in zip(record_ids, self.values, strict=True):
                cell = std.clean_text(values.get(rel.column))
                if cell is None:
                    continue
                for position, part, target_keys in sc.relation_targets(memo, rel, cell):
                    properties = _edge_properties(sc, rel, values, position) if rel.properties else None
                    for k, v in zip(out, (record_id, rel.type, rel.direction, rel.target, rel.match_on, part,
                                          target_keys, position, properties), strict=True):
                        out[k].append(v)
        if out["record_id"]:
            self.lake.append("dwd_relation", pa.table({k: pa.array(v, pa.int32() if k == "position" else pa.string())
                                                       for k, v in out.items()}))
