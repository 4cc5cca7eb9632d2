"""The analyst projection of a graph build: the same graph without anything analysts may not see.

Masking answers is bypassed as soon as a query turns a node into a value (`string(p)`,
`struct_extract(p, 'id_' + 'number')`), and a masked value is recoverable when an identifier in
the graph is a plain hash of the raw value (a statement's ID is an md5 of its record, property and
value: a masked ID number then falls to a few hundred guesses). So every build writes a second
graph for analysts in which, by construction,
- sensitive properties (ontology `ckg:sensitive`) of master entities are absent (null);
- statements of a sensitive property carry the masked value (ontology.masking) as `value` and
  `written_value`; those whose mask keeps nothing (`***`) are left out with their relationships,
  since their mere presence can be the secret (which students have an economic-hardship grade);
- identifiers derived from raw values are keyed HMACs (HMAC-SHA256 with a per-workspace secret,
  128 bits as hex): every statement ID, every record's `row_hash`, and the record ID and
  `record_key` of a source keyed on a sensitive column. The same function maps the keys of the
  relationships and of a patch's deletions, so the projection of a patched graph equals the
  projection of a rebuilt one;
- everything else is the full graph's, so saved queries answer alike on non-sensitive data.

The secret lives in the workspace (`secrets/analyst_projection.key`, mode 0600), never in a graph;
it is made once and reused, so HMAC'd IDs are stable from build to build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ontology.masking import FULLY_MASKED, KEEP, mask_array
from ontology.model import load_ontology

if TYPE_CHECKING:
    from campus_kg.workspace import Workspace
    from graph_api.graph_build.run import Frame
    from ingest.lakehouse import Lakehouse

KEY_FILE = Path("secrets") / "analyst_projection.key"
KEY_BYTES = 32
HMAC_HEX_CHARS = 32  # 128 bits: no collisions among billions of IDs, and nothing to guess from
MASKED_STATEMENT_COLUMNS = ("value", "written_value")  # masked by the statement's stated property


class AnalystKeyError(RuntimeError):
    """The workspace's projection key is unreadable or malformed."""


# ---- the per-workspace secret ------------------------------------------------------------------
def key_path(workspace: Workspace) -> Path:
    return workspace.root / KEY_FILE


def projection_key(workspace: Workspace) -> bytes:
    """The workspace's secret, made on first use (32 random bytes, hex, mode 0600)."""
    path = key_path(workspace)
    if not path.exists():
        _create_key(path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise AnalystKeyError(f"{path}: expected {KEY_BYTES * 2} hex characters (the analyst projection key); "
                              "delete the file to make a new key (the next build is then a full one)")
    if path.stat().st_mode & 0o077:  # a restore or a copy widened it: nobody but the owner reads it
        os.chmod(path, 0o600)
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another build made meanwhile
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


# ---- which sources are keyed on a sensitive column ---------------------------------------------
def sensitive_properties() -> list[str]:
    return sorted(p.name for p in load_ontology().properties.values() if p.sensitive)


def sources_keyed_on_sensitive(lake: Lakehouse) -> list[str]:
    """Sources whose record key (and so record ID, `<source>:<key>`) holds a sensitive value: the
    mappings' declared key columns where the mapping file is still there, and, from the data
    itself, every source where a key part equals a sensitive value stated by the same record, or
    a long one (an identifier, not a code) stated by any record: a source keyed on an ID-number
    column it does not map (a card system keyed on 身份证号 that maps only 卡号) states no ID number
    itself, but the other systems state the same ones."""
    sensitive = sensitive_properties()
    found = {source for (source,) in lake.con.execute("""
        SELECT DISTINCT r.source FROM dwd_record r JOIN dwd_statement s USING (record_id)
        WHERE list_contains(?, s.property)
          AND list_has_any(string_split(r.record_key, '|'), [trim(s.original), s.value])""", [sensitive]).fetchall()}
    found |= {source for (source,) in lake.con.execute(f"""
        WITH sensitive_value AS (
            SELECT DISTINCT {_COMPARABLE.format('v')} AS v FROM (
                SELECT unnest([trim(original), value]) AS v FROM dwd_statement WHERE list_contains($1, property)
                UNION ALL
                SELECT unnest([trim(original), value]) FROM dwd_statement_history WHERE list_contains($1, property))
            WHERE length({_COMPARABLE.format('v')}) >= {_SHORTEST_IDENTIFIER}),
        key_part AS (SELECT source, {_COMPARABLE.format('part')} AS part
                     FROM (SELECT source, unnest(string_split(record_key, '|')) AS part FROM dwd_record))
        SELECT DISTINCT source FROM key_part JOIN sensitive_value ON part = v""", [sensitive]).fetchall()}
    found |= _declared_sensitive_keys(lake, set(sensitive))
    return sorted(found)


# Key parts and sensitive values are compared upper-case, without spaces and separators (a source
# writes 110105197009175849 where another writes 110105 19700917 584x or 189-1775-8896). Across
# records only values this long count: shorter sensitive values are codes (an ethnic group's "01")
# that innocent keys may equal by chance.
_COMPARABLE = r"regexp_replace(upper(trim({})), '[\s\-_.()/+]', '', 'g')"
_SHORTEST_IDENTIFIER = 8


def _declared_sensitive_keys(lake: Lakehouse, sensitive: set[str]) -> set[str]:
    from ingest.mapping import load_mapping

    found: set[str] = set()
    for (path,) in lake.con.execute("SELECT DISTINCT mapping_path FROM ingest_run WHERE mapping_path <> ''").fetchall():
        if not Path(path).is_file():
            continue
        try:
            mapping = load_mapping(Path(path))
        except Exception:  # an edited or moved-away mapping: the data check above still holds
            continue
        for source in mapping.sources:
            keyed = {rule.property for column, rule in source.rules() if column in source.record_key}
            if keyed & sensitive:
                found.add(source.name)
    return found


# ---- the projection ------------------------------------------------------------------------------
class AnalystProjection:
    """Turns each frame of a build into its analyst form. Columnar: one DuckDB statement per frame
    computes the HMACs, pyarrow.compute the masks."""

    def __init__(self, key: bytes, sensitive_key_sources: Iterable[str]):
        self.sensitive_key_sources = tuple(sorted(set(sensitive_key_sources)))
        # Names the key and the sources it is applied to: a patch may only continue a graph that
        # was projected the same way (otherwise the build is a full one).
        self.fingerprint = hmac.new(key, "\x1f".join(("campus-kg analyst projection", *self.sensitive_key_sources))
                                    .encode(), hashlib.sha256).hexdigest()[:16]
        ont = load_ontology()
        self._sensitive = {p.name for p in ont.properties.values() if p.sensitive}
        self._open_properties = pa.array(sorted(set(ont.properties) - self._sensitive), pa.string())
        self._con = duckdb.connect()
        block = 64  # HMAC (RFC 2104) over SHA-256, in SQL: inner and outer padded keys as BLOB literals
        padded = key.ljust(block, b"\0") if len(key) <= block else hashlib.sha256(key).digest().ljust(block, b"\0")
        inner, outer = (bytes(b ^ pad for b in padded).hex() for pad in (0x36, 0x5C))
        self._con.execute(f"""CREATE MACRO hmac_hex(v) AS
            left(sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(v)))), {HMAC_HEX_CHARS})""")
        self._con.execute("CREATE TABLE sensitive_source AS SELECT unnest(?::VARCHAR[]) AS source",
                          [list(self.sensitive_key_sources)])
        self._con.execute("""CREATE MACRO record_id_of(v) AS CASE
            WHEN split_part(v, ':', 1) IN (SELECT source FROM sensitive_source)
            THEN split_part(v, ':', 1) || ':' || hmac_hex(v) ELSE v END""")
        # The statements' HMACs, kept from their node frame: their relationships (STATED_IN,
        # DESCRIBES: as many rows again, each) look them up instead of computing them twice more.
        self._statement_ids: pa.Array | None = None
        self._statement_keys: pa.Array | None = None
        # The keys of the statements left out (see _hidden_statements): their relationships go too.
        self._hidden_statement_keys: pa.Array | None = None

    @classmethod
    def for_build(cls, workspace: Workspace, lake: Lakehouse) -> AnalystProjection:
        return cls(projection_key(workspace), sources_keyed_on_sensitive(lake))

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> AnalystProjection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def node_keys(self, label: str, keys: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        """The keys of `label` nodes in the analyst graph (for relationships and a patch's deletions):
        statement IDs and the IDs of records of a sensitive-keyed source are HMAC'd."""
        if label == "Statement":
            if self._statement_ids is not None:
                at = pc.index_in(keys, value_set=self._statement_ids)
                if at.null_count == 0:
                    return pc.take(self._statement_keys, at)
            return self._sql({"k": "hmac_hex(k)"}, pa.table({"k": keys}))["k"]
        if label == "SourceRecord" and self.sensitive_key_sources:
            return self._sql({"k": "record_id_of(k)"}, pa.table({"k": keys}))["k"]
        return keys

    def frame(self, frame: Frame) -> Frame:
        table = frame.table
        if frame.kind == "node":
            if frame.name != "Statement":  # the statements' relationships come right after them
                self._statement_ids = self._statement_keys = self._hidden_statement_keys = None
            table = self._node_table(frame.name, table)
        else:
            table = self._rel_table(frame.start, frame.end, table)
        return dataclasses.replace(frame, table=table)

    # ---- per frame --------------------------------------------------------------------------
    def _node_table(self, label: str, table: pa.Table) -> pa.Table:
        columns = {c: table[c] for c in table.column_names}
        if label == "Statement":
            columns["id"] = self.node_keys(label, table["id"])
            self._statement_ids, self._statement_keys = table["id"].combine_chunks(), columns["id"].combine_chunks()
        if label == "SourceRecord":
            columns.update(self._sql({
                "id": "record_id_of(id)",
                "row_hash": "hmac_hex(row_hash)",  # sha256 of the raw row: guessable from its other values
                "record_key": """CASE WHEN split_part(id, ':', 1) IN (SELECT source FROM sensitive_source)
                                 THEN hmac_hex(record_key) ELSE record_key END"""}, table))
        for name in table.column_names:
            if name == "id" or name not in self._sensitive:
                continue
            if label == "Statement" and name in MASKED_STATEMENT_COLUMNS:
                columns[name] = self._masked_by_property(table["stated_property"], table[name])
            else:  # a master entity's sensitive attribute: absent
                columns[name] = pa.nulls(table.num_rows, table.schema.field(name).type)
        projected = pa.table(list(columns.values()), names=list(columns))
        if label == "Statement":
            hidden = self._hidden_statements(table["stated_property"])
            self._hidden_statement_keys = pc.filter(columns["id"], hidden).combine_chunks()
            projected = projected.filter(pc.invert(hidden))
        return projected

    def _hidden_statements(self, stated: pa.ChunkedArray) -> pa.ChunkedArray:
        """Statements of a sensitive property masked whole (`***`: economic hardship, ethnic group,
        passport, address, ...) are left out of the projection: such a statement says nothing but
        that the value exists, and for some properties that is the secret (a student has a
        family-hardship grade, a person holds a passport)."""
        shown = pc.or_(pc.is_in(stated, value_set=self._open_properties),
                       pc.is_in(stated, value_set=pa.array(sorted(KEEP), pa.string())))
        return pc.invert(pc.fill_null(shown, False))

    def _rel_table(self, start: str | None, end: str | None, table: pa.Table) -> pa.Table:
        columns = {c: table[c] for c in table.column_names}
        for side, label in (("from", start), ("to", end)):
            columns[side] = self.node_keys(label, table[side])
        for name in table.column_names:
            if name not in ("from", "to") and name in self._sensitive:
                columns[name] = pa.nulls(table.num_rows, table.schema.field(name).type)
        projected = pa.table(list(columns.values()), names=list(columns))
        hidden = self._hidden_statement_keys
        for side, label in (("from", start), ("to", end)):
            if label == "Statement" and hidden is not None and len(hidden):
                projected = projected.filter(pc.invert(pc.fill_null(pc.is_in(projected[side], value_set=hidden), False)))
        return projected

    def _masked_by_property(self, stated: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.ChunkedArray:
        """Each statement's value masked by its stated property's mask; values of a property not
        known to be non-sensitive are fully masked."""
        text = pc.cast(values, pa.string())
        sensitive = pc.invert(pc.fill_null(pc.is_in(stated, value_set=self._open_properties), False))
        out = pc.if_else(pc.and_(sensitive, pc.is_valid(text)), pa.scalar(FULLY_MASKED), text)
        for prop in KEEP:
            which = pc.fill_null(pc.equal(stated, prop), False)
            out = pc.if_else(which, mask_array(prop, text), out)
        return out

    def _sql(self, expressions: dict[str, str], table: pa.Table) -> dict[str, pa.ChunkedArray]:
        """The expressions over the table's rows, in the table's row order."""
        self._con.register("frame", table)
        try:
            select = ", ".join(f'{sql} AS "{name}"' for name, sql in expressions.items())
            result = self._con.sql(f"SELECT {select} FROM frame").to_arrow_table()
        finally:
            self._con.unregister("frame")
        return {name: result[name] for name in expressions}
