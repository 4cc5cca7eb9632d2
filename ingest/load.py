"""Ingest one mapping: read every declared export, keep raw rows, standardise, quarantine.

Every row read is accounted for: `read = loaded + quarantined` per source, stored in
`source_stats` and printed by the CLI.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ingest import standardise as std
from ingest.idcard import parse_id_number
from ingest.lakehouse import Lakehouse, dwd_table, ods_table
from ingest.mapping import FieldRule, Mapping, Source
from ontology.model import Ontology, PropertyDef, load_ontology

CHUNK_ROWS = 50_000
csv.field_size_limit(sys.maxsize)


@dataclass
class SourceStats:
    source: str
    file: str
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    problems: list[str] = field(default_factory=list)  # first few quarantine reasons, for the CLI


@dataclass
class IngestResult:
    run_id: str
    sources: list[SourceStats]

    @property
    def read(self) -> int:
        return sum(s.read for s in self.sources)


class _Quarantine(Exception):
    def __init__(self, field_name: str, reason: str):
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason


# ---- reading ------------------------------------------------------------------------------------
def _open_text(path: Path, encoding: str):
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding
    # surrogateescape: undecodable bytes survive to the row, which is then quarantined by name.
    return open(path, encoding=enc, errors="surrogateescape", newline="")


def read_rows(path: Path, source: Source) -> Iterator[tuple[int, list[str] | None, list[str]]]:
    """Yields (line number, header, cells). The header comes back with the first row."""
    delimiter = "\t" if source.format == "tsv" else ","
    with _open_text(path, source.encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        for cells in reader:
            if not cells:  # blank line
                continue
            yield reader.line_num, header, cells


# ---- standardising one value ------------------------------------------------------------------------
def _apply_rule(raw: str | None, rule: FieldRule) -> str | None:
    value = rule.constant if rule.constant is not None else raw
    value = std.clean_text(value)
    if value is None:
        return None
    if rule.strip_prefix and value.startswith(rule.strip_prefix):
        value = value[len(rule.strip_prefix):]
    if rule.regex:
        m = re.search(rule.regex, value)
        if m is None:
            return None
        value = m.group(1) if m.groups() else m.group(0)
    if rule.codes is not None:
        value = rule.codes.get(value, value)
    return value


def _code(ont: Ontology, prop: PropertyDef, value: str) -> tuple[str | None, str | None]:
    codes = ont.code_list_for(prop.name)
    if codes is None:
        return value, None
    if value in codes.codes:
        return value, None
    if value in codes.alt_labels:
        return codes.alt_labels[value], None
    return None, f"{value!r} is not in code list {codes.label_zh}"


def standardise_value(ont: Ontology, prop: PropertyDef, value: str, rule: FieldRule):
    """Returns (typed standard value or None, flag or None)."""
    name = prop.name
    if name == "id_number":
        parsed = parse_id_number(value)
        if parsed is None:
            return None, None
        if not parsed.valid:
            return None, f"invalid ID number: {parsed.problem}"
        return parsed.value, ("upgraded from 15 digits" if parsed.upgraded_from_15 else None)
    if name in ("name", "author_name"):
        return std.standardise_name(value), None
    if name == "org_name":
        return std.standardise_org_name(value), None
    if name == "phone":
        return std.standardise_phone(value)
    if name == "email":
        return std.standardise_email(value)
    if prop.code_list is not None:
        return _code(ont, prop, value)
    if prop.datatype == "date":
        return std.parse_date(value, rule.date_formats or ())
    if prop.datatype == "int":
        try:
            return int(float(value.replace(",", ""))), None
        except ValueError:
            return None, f"not a whole number: {value!r}"
    if prop.datatype == "double":
        try:
            return float(value.replace(",", "")), None
        except ValueError:
            return None, f"not a number: {value!r}"
    return value, None


# ---- one source -------------------------------------------------------------------------------------
class _Buffers:
    """Column-wise buffers per lakehouse table, flushed in chunks so memory stays flat."""

    def __init__(self, lake: Lakehouse):
        self.lake = lake
        self.tables: dict[str, dict[str, list]] = {}
        self.rows = 0

    def add(self, table: str, row: dict) -> None:
        cols = self.tables.setdefault(table, {})
        n = len(next(iter(cols.values()))) if cols else 0
        for k in row:
            if k not in cols:
                cols[k] = [None] * n
        for k, col in cols.items():
            col.append(row.get(k))

    def flush(self) -> None:
        for table, cols in self.tables.items():
            if cols:
                self.lake.append(table, pa.table(cols))
        self.tables = {}


def _record_rows(ont: Ontology, source: Source, header: list[str], cells: list[str], line: int,
                 run_id: str, seen: set[str]) -> dict[str, list[dict]]:
    if len(cells) != len(header):
        raise _Quarantine("*", f"row has {len(cells)} cells, header has {len(header)}")
    row = dict(zip(header, cells, strict=True))
    for column, text in row.items():
        if any("\udc80" <= ch <= "\udcff" for ch in text):
            raise _Quarantine(column, f"bytes that are not {source.encoding}")
    missing = [k for k in source.record_key if k not in row]
    if missing:
        raise _Quarantine(",".join(missing), "record key column missing from the header")
    key_parts = [std.clean_text(row[k]) for k in source.record_key]
    if any(p is None for p in key_parts):
        raise _Quarantine(",".join(source.record_key), "record key is empty")
    key = "|".join(key_parts)  # type: ignore[arg-type]
    if key in seen:
        raise _Quarantine(",".join(source.record_key), f"duplicate record key {key!r}")
    seen.add(key)
    record_id = f"{source.name}:{key}"
    row_hash = hashlib.sha256("\x1f".join(cells).encode("utf-8", "surrogateescape")).hexdigest()

    wide: dict = {"record_id": record_id}
    statements: list[dict] = []
    for column, rule in source.rules():
        raw = row.get(column)
        if raw is None and rule.constant is None:
            raise _Quarantine(column, "column declared in the mapping is not in the file")
        value = _apply_rule(raw, rule)
        if value is None:
            continue
        prop = ont.prop(rule.property)
        standard, flag = standardise_value(ont, prop, value, rule)
        if wide.get(prop.name) is None and standard is not None:
            wide[prop.name] = standard
        statements.append({"record_id": record_id, "property": prop.name,
                           "value": None if standard is None else str(standard),
                           "original": raw, "flag": flag})
    _cross_check(wide, statements, record_id)

    relations = []
    for rel in source.relationships:
        cell = std.clean_text(row.get(rel.column))
        if cell is None:
            continue
        parts = [p for p in (re.split(rel.split, cell) if rel.split else [cell])]
        for position, part in enumerate(parts, start=1):
            part = std.clean_text(part)
            if part is None:
                continue
            if rel.strip_prefix and part.startswith(rel.strip_prefix):
                part = part[len(rel.strip_prefix):]
            relations.append({"record_id": record_id, "rel_type": rel.type, "direction": rel.direction,
                              "target_type": rel.target, "match_on": rel.match_on, "target_value": part,
                              "position": position})
    return {
        ods_table(source.name): [{"_run_id": run_id, "_row_no": line, "_record_key": key, "_row_hash": row_hash,
                                  **row}],
        "dwd_record": [{"record_id": record_id, "source": source.name, "system": source.system,
                        "table_name": source.table, "entity_type": source.entity_type, "record_key": key,
                        "run_id": run_id, "row_no": line, "row_hash": row_hash}],
        dwd_table(source.entity_type): [wide],
        "dwd_statement": statements,
        "dwd_relation": relations,
    }


def _cross_check(wide: dict, statements: list[dict], record_id: str) -> None:
    """多源校核 within one record: the ID number carries birth date and sex; flag disagreement."""
    id_number = wide.get("id_number")
    if not id_number:
        return
    parsed = parse_id_number(id_number)
    for prop, derived in (("birth_date", parsed.birth_date), ("sex", parsed.sex)):
        recorded = wide.get(prop)
        if recorded is not None and derived is not None and recorded != derived:
            for s in statements:
                if s["property"] == prop and s["flag"] is None:
                    s["flag"] = f"disagrees with ID number ({derived})"


def ingest_source(lake: Lakehouse, ont: Ontology, mapping: Mapping, source: Source, run_id: str,
                  on_progress: Callable[[int], None] | None = None) -> SourceStats:
    path = mapping.source_path(source)
    stats = SourceStats(source.name, str(path))
    lake.clear_source(source.name)
    buffers = _Buffers(lake)
    quarantine: list[dict] = []
    seen: set[str] = set()
    header_done = False
    if not path.exists():
        stats.problems.append(f"{path}: file not found")
        lake.con.execute("INSERT INTO quarantine VALUES (?, ?, ?, 0, '*', 'file not found', NULL)",
                         [run_id, source.name, str(path)])
        return stats
    for line, header, cells in read_rows(path, source):
        if not header_done:
            lake.ensure_ods(source.name, header)
            header_done = True
        stats.read += 1
        try:
            rows = _record_rows(ont, source, header, cells, line, run_id, seen)
        except _Quarantine as q:
            stats.quarantined += 1
            quarantine.append({"run_id": run_id, "source": source.name, "file": str(path), "row_no": line,
                               "field": q.field_name, "reason": q.reason,
                               "raw": "\x1f".join(cells).encode("utf-8", "backslashreplace").decode()[:2000]})
            if len(stats.problems) < 5:
                stats.problems.append(f"{path.name} row {line}, field {q.field_name}: {q.reason}")
            continue
        stats.loaded += 1
        for table, items in rows.items():
            for item in items:
                buffers.add(table, item)
        if stats.read % CHUNK_ROWS == 0:
            buffers.flush()
            if on_progress:
                on_progress(CHUNK_ROWS)
    buffers.flush()
    if quarantine:
        lake.append("quarantine", pa.Table.from_pylist(quarantine))
    if on_progress:
        on_progress(stats.read % CHUNK_ROWS)
    return stats


def ingest(mapping: Mapping, lake: Lakehouse, mapping_path: str = "",
           on_source: Callable[[Source], Callable[[int], None] | None] | None = None) -> IngestResult:
    ont = load_ontology()
    run_id = lake.begin_run(mapping_path, mapping.sha256)
    results = []
    for source in mapping.sources:
        lake.con.execute("INSERT OR REPLACE INTO source_system VALUES (?, ?, ?)",
                         [source.system, source.system_name, source.department])
        lake.con.execute("DELETE FROM source_authority WHERE source = ?", [source.name])
        for prop, rank in source.authority.items():
            lake.con.execute("INSERT INTO source_authority VALUES (?, ?, ?)", [source.name, prop, rank])
        progress = on_source(source) if on_source else None
        stats = ingest_source(lake, ont, mapping, source, run_id, progress)
        lake.con.execute("INSERT INTO source_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [run_id, source.name, source.system, source.table, source.department, source.entity_type,
                          stats.file, stats.read, stats.loaded, stats.quarantined])
        results.append(stats)
    lake.finish_run(run_id)
    return IngestResult(run_id, results)
