"""Ingest one mapping: read every declared source, keep raw rows, standardise, validate, quarantine,
and work out what changed since the last run.

Every row read is accounted for: `read = loaded + quarantined` per source, stored in
`source_stats` and printed by the CLI. A source is held back whole — it keeps its previous state,
so a broken export never deletes records — when it cannot be read at all or breaks off part way,
when its header lacks a column the mapping reads, or when the load would delete more than
`max_delete_share` of its records (the deletion guard; `--allow-deletions` or the source's
`allow_deletions: true` lift it). A row that is quarantined leaves its record's last good version
in place.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import importlib.metadata
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from ingest import quality, readers
from ingest.batch import BATCH_ROWS, RecordBatch
from ingest import standardise as std
from ingest.idcard import parse_id_number
from ingest.lakehouse import Lakehouse, dwd_table, ods_table
from ingest.mapping import FieldRule, Mapping, Source
from ingest.validation import record_rules
from ontology.model import Ontology, PropertyDef, load_ontology

CHUNK_ROWS = 10_000
# Standardisation is remembered per distinct raw value of a column (a college name, a date, a
# surname repeat across rows); past this many distinct values a column's memo starts again, so
# memory stays bounded on columns where every value is new (keys, ID numbers).
MEMO_LIMIT = 100_000
# True: every row of every source standardised on its own, every cell afresh, with nothing remembered
# and no batches (ingest/batch.py): the reference path of tests/test_ingest_golden.py.
REFERENCE = False
DEFAULT_MAX_DELETE_SHARE = 0.2  # settings.ingest_max_delete_share
POSITION = "@position"  # a relationship property filled from the place in a split list
AUTHOR_LIST = "authors"  # a relationship's `split: authors`: the author-list parser, not a regex
FORMULA_STARTS = frozenset("=@+-\t\r")

# Quality dimension a flag counts against (docs/quality.md); "info" flags count against none.
VALIDITY, ACCURACY, CONSISTENCY, INFO = "validity", "accuracy", "consistency", "info"

# Why a source was held back (source_stats.held_back).
HELD_UNREADABLE, HELD_HEADER, HELD_DELETION_GUARD = "unreadable", "header", "deletion_guard"


@dataclass
class SourceStats:
    source: str
    file: str
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    problem: str | None = None  # the whole source could not be (fully) read
    problems: list[str] = field(default_factory=list)  # first few quarantine reasons, for the CLI
    held_back: str | None = None  # unreadable, header or deletion_guard: the source kept its previous state
    kept: int = 0  # records whose new row was quarantined and that kept their last good version

    @property
    def balanced(self) -> bool:
        return self.read == self.loaded + self.quarantined


@dataclass
class IngestResult:
    run_id: str
    sources: list[SourceStats]
    quality: dict | None = None  # the run's quality report

    @property
    def read(self) -> int:
        return sum(s.read for s in self.sources)

    @property
    def changed(self) -> bool:
        """Whether resolution and the graph have anything new to see."""
        return any(s.new or s.changed or s.deleted for s in self.sources)


class _Quarantine(Exception):
    def __init__(self, field_name: str, reason: str, key: str | None = None):
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason
        self.key = key  # the row's record key, when it could be read: its record keeps its last version


class _DeletionGuard(Exception):
    """The load would delete more of the source's records than the guard allows."""


@dataclass(frozen=True)
class Flag:
    text: str
    dimension: str = VALIDITY


# ---- reading ----------------------------------------------------------------------------------
def read_source(mapping: Mapping, source: Source) -> Iterator[readers.RawRow]:
    """The source's rows. Whatever goes wrong while reading (a missing database driver, a file
    that vanished, a reader's own failure) is a `FileUnreadable`: the source is held back."""
    try:
        yield from _read(mapping, source)
    except readers.FileUnreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - every other failure of a read holds the source back too
        raise readers.FileUnreadable(f"cannot be read: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def _database_file_outside(mapping: Mapping, source: Source) -> Path | None:
    """A file database (SQLite) is a file like any export: outside the mapping's folder only where
    the mapping allows it. Otherwise `url: sqlite:////srv/campus-kg/ws/state.sqlite` in a mapping
    someone else wrote reads the workspace's own tokens and access log into the lakehouse."""
    import sqlalchemy as sa

    if mapping.allow_paths_outside:
        return None
    try:
        url = sa.engine.make_url(source.url or "")
    except sa.exc.ArgumentError:
        return None  # read_sql says what is wrong with it
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = url.database.removeprefix("file:").split("?", 1)[0]  # a `file:` URI (uri=true)
    real = Path(database).resolve()
    return None if real.is_relative_to(mapping.base_dir.resolve()) else real


def _read(mapping: Mapping, source: Source) -> Iterator[readers.RawRow]:
    required = source.required_columns()
    if source.format == "sql":
        if (real := _database_file_outside(mapping, source)) is not None:
            raise readers.FileUnreadable(f"the database file {real} is outside the mapping's folder {mapping.base_dir}")
        yield from readers.read_sql(source.url or "", source.sql_table, source.query, source.max_cell_chars,
                                    required=required)
        return
    if (real := mapping.outside_folder(source)) is not None:  # checked on load too; a symlink may have moved
        raise readers.FileUnreadable(f"the path leads to {real}, outside the mapping's folder {mapping.base_dir}")
    path = mapping.source_path(source)
    if not path.exists():
        raise readers.FileUnreadable("file not found")
    if not path.is_file():
        raise readers.FileUnreadable("not a file")
    if source.format == "xlsx":
        yield from readers.read_xlsx(path, source.sheet, source.max_cell_chars, required)
        return
    readers.refuse_markup(path)
    if source.format == "json":
        yield from readers.read_json(path, source.records_path, source.max_cell_chars)
    else:
        encoding = readers.resolve_encoding(path, source.encoding)
        if source.format == "jsonl":
            yield from readers.read_jsonl(path, encoding, source.max_cell_chars)
        else:
            yield from readers.read_delimited(path, encoding, "\t" if source.format == "tsv" else ",",
                                              source.max_cell_chars, required)


# ---- standardising one value ------------------------------------------------------------------
def _apply_rule(raw: str | None, rule: FieldRule) -> list[str]:
    value = std.clean_text(rule.constant if rule.constant is not None else raw)
    if value is None:
        return []
    out = []
    for part in re.split(rule.split, value) if rule.split else [value]:
        part = std.clean_text(part)
        if part is None:
            continue
        if rule.strip_prefix and part.startswith(rule.strip_prefix):
            part = part[len(rule.strip_prefix):]
        if rule.regex:
            m = re.search(rule.regex, part)
            if m is None:
                continue
            part = m.group(1) if m.groups() else m.group(0)
        if rule.codes is not None:
            part = rule.codes.get(part, part)
        out.append(part)
    return out


def _code(ont: Ontology, prop: PropertyDef, value: str):
    codes = ont.code_list_for(prop.name)
    if codes is None or value in codes.codes:
        return value, None
    if value in codes.alt_labels:
        return codes.alt_labels[value], None
    return None, Flag(f"{value!r} is not in code list {codes.label_zh}")


@dataclass(frozen=True)
class Context:
    """What standardisation needs beyond the value: the mapping's organisation aliases."""

    org_aliases: dict[str, str]
    university: str | None = None


def standardise_value(ont: Ontology, prop: PropertyDef, value: str, rule: FieldRule, ctx: Context):
    """Returns (typed standard value or None, Flag or None)."""
    name = prop.name
    if name == "id_number":
        parsed = parse_id_number(value)
        if parsed is None:
            return None, None
        if not parsed.valid:
            dim = ACCURACY if parsed.problem == "check character is wrong" else VALIDITY
            return None, Flag(f"invalid ID number: {parsed.problem}", dim)
        return parsed.value, (Flag("upgraded from 15 digits", INFO) if parsed.upgraded_from_15 else None)
    if name in ("name", "author_name", "given_name", "family_name"):
        return std.standardise_name(value), None
    if name == "passport_no":
        return _flagged(std.standardise_passport(value))
    if name == "nationality":
        return _flagged(std.standardise_nationality(value))
    if name == "address":
        return std.standardise_address(value), None
    if name == "org_name":
        return std.standardise_org_name(value, ctx.org_aliases, ctx.university), None
    if name == "phone":
        return _flagged(std.standardise_phone(value))
    if name == "email":
        return _flagged(std.standardise_email(value))
    if prop.code_list is not None:
        return _code(ont, prop, value)
    if prop.datatype == "date":
        parsed_date, text = std.parse_date(value, rule.date_formats or ())
        if text == "month_precision":
            return parsed_date, Flag(text, INFO)
        if parsed_date is not None and name == "birth_date" and not 1900 <= parsed_date.year <= dt.date.today().year:
            return parsed_date, Flag(f"implausible birth date {parsed_date}", ACCURACY)
        return parsed_date, (Flag(text) if text else None)
    if prop.datatype in ("int", "double"):
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            return None, Flag(f"not a number: {value!r}")
        if prop.datatype == "int":
            if not number.is_integer():
                return None, Flag(f"not a whole number: {value!r}")
            return int(number), None
        return number, None
    return value, None


def _edge_properties(sc, rel, values: dict, position: int) -> str | None:
    """A relationship's own properties (role, from, to, author rank) as JSON, typed like any field.
    A value that does not parse is left out: the edge still holds, without that detail."""
    out = {}
    for name, column in rel.properties.items():
        if column == POSITION:
            out[name] = position
            continue
        raw = std.clean_text(values.get(column))
        if raw is None:
            continue
        value, flag = sc.standardise(name, raw)
        if value is not None and (flag is None or flag.dimension == INFO):
            out[name] = value.isoformat() if isinstance(value, dt.date) else value
    return json.dumps(out, ensure_ascii=False) if out else None


def _flagged(result: tuple[object, str | None]):
    value, text = result
    return value, (Flag(text) if text else None)


# ---- one record -------------------------------------------------------------------------------
class _Buffers:
    """Rows per lakehouse table, flushed in chunks as Arrow tables so memory stays flat.

    Rows are kept as tuples of their values in runs of rows with the same keys (a table's rows
    nearly always share them), so that a flush turns them into columns with `zip` rather than a
    lookup per cell; the order of the rows is kept."""

    def __init__(self, lake: Lakehouse):
        self.lake = lake
        # table -> runs of (keys, [values of each row]); a row with other keys starts a new run.
        self.tables: dict[str, list[tuple[tuple, list[tuple]]]] = {}

    def add(self, table: str, rows: list[dict]) -> None:
        runs = self.tables.get(table)
        if runs is None:
            runs = self.tables[table] = []
        for row in rows:
            keys = tuple(row)
            if not runs or runs[-1][0] != keys:
                runs.append((keys, []))
            runs[-1][1].append(tuple(row.values()))

    def flush(self) -> None:
        for table, runs in self.tables.items():
            if runs:
                self.lake.append(table, pa.table(_columns(runs)))
        self.tables = {}


def _columns(runs: list[tuple[tuple, list[tuple]]]) -> dict[str, list]:
    """The union of the runs' keys in first-seen order, a column each; a key a run lacks is None there."""
    names = dict.fromkeys(k for keys, _ in runs for k in keys)
    columns: dict[str, list] = {name: [] for name in names}
    for keys, rows in runs:
        for name, values in zip(keys, zip(*rows), strict=True):
            columns[name].extend(values)
        for name in names.keys() - set(keys):
            columns[name].extend([None] * len(rows))
    return columns


@dataclass
class _SourceContext:
    ont: Ontology
    source: Source
    run_id: str
    ctx: Context
    seen: set[str] = field(default_factory=set)
    # A mention source: its parent's record keys, and the positions taken per parent record.
    parent_keys: set[str] = field(default_factory=set)
    positions: dict[str, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Worked out once per source rather than once per row.
        self.rules = [(column, rule, self.ont.prop(rule.property)) for column, rule in self.source.rules()]
        shapes = record_rules().get(self.source.entity_type, [])
        self.shape_rules = {p.name: [r for r in shapes if r.property == p.name] for _, _, p in self.rules}
        self.required = [r for r in shapes if r.required]
        self.name_column = _column_of(self.source, "name")
        self.code_props = {p.name for p in self.ont.properties.values() if p.code_list is not None}
        # Per field rule, raw cell -> its standardised parts (see `_field_parts`); per relationship,
        # cell -> its targets; per property, raw -> (value, flag) under the default rule (edge
        # properties, mention context); name keys; `updated` dates. Everything remembered depends on
        # the cell and on what is fixed for the source and run (rule, ontology, aliases), never on
        # the rest of the row: what does (the ID number cross-check) is worked out per row.
        self.field_memos: list[dict] = [{} for _ in self.rules]
        self.relation_memos: list[dict] = [{} for _ in self.source.relationships]
        self.value_memo: dict = {}
        self.name_keys_memo: dict = {}
        self.date_memo: dict = {}

    def standardise(self, prop: str, raw: str) -> tuple[object, Flag | None]:
        """standardise_value under the default rule of `prop`, remembered per raw value."""
        return _remembered(self.value_memo, (prop, raw), lambda: standardise_value(
            self.ont, self.ont.prop(prop), raw, FieldRule(property=prop), self.ctx))

    def field_parts(self, memo: dict, raw: str | None, rule: FieldRule, prop: PropertyDef) -> tuple[tuple, ...]:
        """`_field_parts` of one cell, remembered in the field rule's memo."""
        return _remembered(memo, raw, lambda: _field_parts(self, raw, rule, prop))

    def relation_targets(self, memo: dict, rel, cell: str) -> tuple[tuple, ...]:
        return _remembered(memo, cell, lambda: _relation_targets(self, rel, cell))

    def name_keys(self, name: str, given: str | None, family: str | None) -> str:
        args = (name, given, family)
        return _remembered(self.name_keys_memo, args, lambda: ";".join(std.name_keys_of(*args)))

    def updated_date(self, raw: str | None) -> dt.date | None:
        """A record's last update, from the source's `updated_column`."""
        return _remembered(self.date_memo, raw, lambda: std.parse_date(raw)[0]) if raw else None


_MISSING = object()


def _remembered(memo: dict, key, compute: Callable[[], object]):
    if REFERENCE:
        return compute()
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        value = memo[key] = compute()
    return value


def _field_parts(sc: _SourceContext, raw: str | None, rule: FieldRule, prop: PropertyDef) -> tuple[tuple, ...]:
    """What one cell of a field says, row-independent: per part, (standard value, its text, flag text,
    flag dimension), the SHACL shape rules of the property applied."""
    parts = []
    for value in _apply_rule(raw, rule):
        standard, flag = standardise_value(sc.ont, prop, value, rule, sc.ctx)
        if standard is not None:
            for shape_rule in sc.shape_rules[prop.name]:
                if why := shape_rule.check(standard):
                    flag, standard = Flag(why), None
        parts.append((standard, None if standard is None else _text(standard),
                      flag.text if flag else None, flag.dimension if flag else None))
    return tuple(parts)


def _relation_targets(sc: _SourceContext, rel, cell: str) -> tuple[tuple, ...]:
    """(position, target value, target keys) of each part of a relationship's cell."""
    parts = (std.split_author_list(cell) if rel.split == AUTHOR_LIST else
             re.split(rel.split, cell) if rel.split else [cell])
    out = []
    for position, part in enumerate(parts, start=1):
        part = std.clean_text(part)
        if part is None:
            continue
        if rel.strip_prefix and part.startswith(rel.strip_prefix):
            part = part[len(rel.strip_prefix):]
        if rel.target == "Organisation":
            part = std.standardise_org_name(part, sc.ctx.org_aliases, sc.ctx.university) or part
        elif rel.match_on in sc.code_props:  # a code or its label -> the code list's notation
            part = _code(sc.ont, sc.ont.prop(rel.match_on), part)[0] or part
        out.append((position, part, ";".join(std.name_keys(part)) if "name" in rel.match_on else None))
    return tuple(out)


def _is_formula(text: str | None) -> bool:
    return bool(text) and text.lstrip()[:1] in FORMULA_STARTS and std.looks_like_formula(text.strip())


def _formula(column: str, text: str, key: str | None = None) -> _Quarantine:
    return _Quarantine(column, f"cell starts like a spreadsheet formula (formula injection), e.g. {text[:40]!r}; "
                               "not loaded", key)


def _record_key(source: Source, values: dict[str, str | None]) -> str:
    missing = [k for k in source.record_key if k not in values]
    if missing:
        raise _Quarantine(",".join(missing), "record key column is missing")
    for k in source.record_key:
        if _is_formula(values[k]):
            raise _formula(k, values[k] or "")
    key_parts = [std.clean_text(values[k]) for k in source.record_key]
    if any(p is None for p in key_parts):
        raise _Quarantine(",".join(source.record_key), "record key is empty")
    return "|".join(key_parts)  # type: ignore[arg-type]


def _readable_key(source: Source, row: readers.RawRow) -> str | None:
    """The record key of a row that cannot be loaded, when the key cells themselves are sound."""
    if row.problem is not None and row.problem[0] in source.record_key:
        return None
    try:
        key = _record_key(source, row.values)
    except _Quarantine:
        return None
    return None if readers.has_undecodable_bytes(key) else key


def _checked_key(sc: _SourceContext, row: readers.RawRow) -> tuple[str, str]:
    """(record key, row hash) of a row whose key is sound, no cell a formula, the key not yet loaded."""
    source, values = sc.source, row.values
    key = _record_key(source, values)
    for column, text in values.items():
        if _is_formula(text):
            raise _formula(column, text or "", key)
    if key in sc.seen:
        raise _Quarantine(",".join(source.record_key), f"duplicate record key {key!r}")
    return key, hashlib.sha256(row.raw.encode("utf-8", "surrogateescape")).hexdigest()


def _record_rows(sc: _SourceContext, row: readers.RawRow) -> dict[str, list[dict]]:
    """What one row adds to each table: the reference path of an entity source's rows (RecordBatch
    writes the same in batches), and the only path of a mention source's."""
    source = sc.source
    values = row.values
    key, row_hash = _checked_key(sc, row)
    record_id = f"{source.name}:{key}"
    if source.mentions is not None:
        mention = _mention_rows(sc, values, key, record_id)
        sc.seen.add(key)
        return {**_source_row(sc, row, key, record_id, row_hash), **mention}

    wide: dict = {"record_id": record_id}
    statements: list[dict] = []
    for (column, rule, prop), memo in zip(sc.rules, sc.field_memos, strict=True):
        if column not in values and rule.constant is None:
            # The header check refused files without the required columns: what is left out here is an
            # optional column, or a path a semi-structured record leaves out.
            continue
        raw = values.get(column)
        name = prop.name
        for standard, text, flag, dimension in sc.field_parts(memo, raw, rule, prop):
            if standard is not None and wide.get(name) is None:
                wide[name] = standard
            statements.append({"record_id": record_id, "property": name, "column_name": column,
                               "value": text, "original": raw, "flag": flag, "dimension": dimension})
    _cross_check(wide, statements)
    if wide.get("name") is None and (wide.get("given_name") or wide.get("family_name")):
        # A source with only given + family name: the whole name is derived, so that keys, survivorship
        # and the graph work as for any other record; the statement says where it came from.
        wide["name"] = std.compose_name(wide.get("given_name"), wide.get("family_name"))
        statements.append({"record_id": record_id, "property": "name", "column_name": None, "value": wide["name"],
                           "original": None, "flag": "derived from given_name + family_name", "dimension": INFO})
    for shape_rule in sc.required:
        if wide.get(shape_rule.property) is None:
            statements.append({"record_id": record_id, "property": shape_rule.property, "column_name": None,
                               "value": None, "original": None, "flag": f"SHACL {shape_rule.shape}: required",
                               "dimension": "completeness"})
    if "name" in wide:
        wide["name_keys"] = sc.name_keys(values.get(sc.name_column) or wide["name"], wide.get("given_name"),
                                         wide.get("family_name"))

    relations = []
    for rel, memo in zip(source.relationships, sc.relation_memos, strict=True):
        cell = std.clean_text(values.get(rel.column))
        if cell is None:
            continue
        for position, part, target_keys in sc.relation_targets(memo, rel, cell):
            relations.append({"record_id": record_id, "rel_type": rel.type, "direction": rel.direction,
                              "target_type": rel.target, "match_on": rel.match_on, "target_value": part,
                              "target_keys": target_keys, "position": position,
                              "properties": _edge_properties(sc, rel, values, position) if rel.properties else None})
    sc.seen.add(key)  # only now: `seen` is the set of keys loaded
    return {
        **_source_row(sc, row, key, record_id, row_hash),
        dwd_table(source.entity_type): [wide],
        "dwd_statement": statements,
        "dwd_relation": relations,
    }


def _source_row(sc: _SourceContext, row: readers.RawRow, key: str, record_id: str, row_hash: str) -> dict:
    """The raw row (ODS) and its record's identity, for every loaded row of any kind of source."""
    source, values = sc.source, row.values
    updated = values.get(source.updated_column) if source.updated_column else None
    return {
        ods_table(source.name): [{"_run_id": sc.run_id, "_row_no": row.row_no, "_record_key": key,
                                  "_row_hash": row_hash, **values}],
        "dwd_record": [{"record_id": record_id, "source": source.name, "system": source.system,
                        "table_name": source.table, "entity_type": source.entity_type, "record_key": key,
                        "run_id": sc.run_id, "row_no": row.row_no, "row_hash": row_hash,
                        "source_updated": sc.updated_date(updated)}],
    }


def _mention_rows(sc: _SourceContext, values: dict, key: str, record_id: str) -> dict[str, list[dict]]:
    """One row of a mention source (docs/mapping.md): a relationship of its parent's record to the
    person the row names, carrying the row's own context. The relationship is the parent record's
    (record_id) but stated by this row (stated_by), which owns it: loading this source again replaces
    it, loading the parent leaves it. What the row says is kept as its statements, for lineage."""
    rule = sc.source.mentions
    parent_cells = [std.clean_text(values.get(c)) for c in rule.parent.key]
    key_columns = ",".join(rule.parent.key)
    if any(cell is None for cell in parent_cells):
        raise _Quarantine(key_columns, f"the parent key is empty: the row names no record of {rule.parent.source}")
    parent_key = "|".join(parent_cells)  # type: ignore[arg-type]
    if parent_key not in sc.parent_keys:
        # Not kept at its last version: a mention whose parent is gone goes with it.
        raise _Quarantine(key_columns, f"no record {parent_key!r} in the parent source {rule.parent.source}: "
                                       "the mention has nothing to attach to")
    parent_id = f"{rule.parent.source}:{parent_key}"
    taken = sc.positions.setdefault(parent_id, set())
    if rule.position is not None:
        text = std.clean_text(values.get(rule.position)) or ""
        if not re.fullmatch(r"0*[1-9]\d{0,5}", text):
            raise _Quarantine(rule.position, f"position {text!r} is not a whole number from 1", key)
        position = int(text)
        if position in taken:
            raise _Quarantine(rule.position, f"position {position} of {parent_id} is stated twice")
    else:  # the order of the parent's rows in the export
        position = max(taken, default=0) + 1
    name = std.clean_text(values.get(rule.name)) if rule.name else None
    statements, context = [], {}
    if name is not None:
        statements.append({"record_id": record_id, "property": "name", "column_name": rule.name,
                           "value": std.standardise_name(name), "original": values.get(rule.name), "flag": None,
                           "dimension": None})
    for prop, column in rule.context.items():
        raw = std.clean_text(values.get(column))
        if raw is None:
            continue
        standard, flag = sc.standardise(prop, raw)
        if standard is not None and (flag is None or flag.dimension == INFO):
            context[prop] = _text(standard)
        statements.append({"record_id": record_id, "property": prop, "column_name": column,
                           "value": None if standard is None else _text(standard), "original": values.get(column),
                           "flag": flag.text if flag else None, "dimension": flag.dimension if flag else None})
    identifiers = [(prop, context[prop]) for prop, _ in rule.identifiers() if prop in context]
    if name is None and not identifiers:
        columns = [c for c in (rule.name, *(c for _, c in rule.identifiers())) if c]
        raise _Quarantine(",".join(columns), "the row names no person: no name and no identifier")
    properties = _edge_properties(sc, rule, values, position) if rule.properties else None
    for prop, column in rule.properties.items():
        value = json.loads(properties).get(prop) if properties else None
        if column != POSITION and value is not None:
            statements.append({"record_id": record_id, "property": prop, "column_name": column, "value": str(value),
                               "original": values.get(column), "flag": None, "dimension": None})
    stated = {"record_id": parent_id, "rel_type": rule.relationship, "direction": rule.direction,
              "target_type": "Person", "position": position, "properties": properties,
              "stated_by": record_id, "mention_org": context.get("org_name")}
    relations = [{**stated, "match_on": "name", "target_value": name,
                  "target_keys": ";".join(std.name_keys(name))}] if name is not None else []
    # An identifier beside the name decides (resolution/mentions.py leaves the name to it).
    relations += [{**stated, "match_on": prop, "target_value": value, "target_keys": None}
                  for prop, value in identifiers]
    taken.add(position)
    return {"dwd_statement": statements, "dwd_relation": relations}


def _column_of(source: Source, prop: str) -> str | None:
    return next((c for c, r in source.rules() if r.property == prop), None)


def _text(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# The ID number's own reading is remembered; comparing it with this record's birth date and sex is
# done per row, as it depends on the row.
_parsed_id_number = lru_cache(maxsize=65_536)(parse_id_number)


def _cross_check(wide: dict, statements: list[dict]) -> None:
    """多源校核 within one record: the ID number carries birth date and sex; flag disagreement."""
    id_number = wide.get("id_number")
    if not id_number:
        return
    parsed = _parsed_id_number(id_number)
    for prop, derived in (("birth_date", parsed.birth_date), ("sex", parsed.sex)):
        recorded = wide.get(prop)
        if recorded is None or derived is None:
            continue
        month_only = any(s["property"] == prop and s["flag"] == "month_precision" for s in statements)
        agrees = (recorded.replace(day=1) == derived.replace(day=1)) if month_only else recorded == derived
        if not agrees:
            for s in statements:
                if s["property"] == prop and s["dimension"] in (None, INFO):
                    s["flag"], s["dimension"] = f"disagrees with ID number ({_text(derived)})", CONSISTENCY


# ---- one source -------------------------------------------------------------------------------
def ingest_source(lake: Lakehouse, ont: Ontology, mapping: Mapping, source: Source, run_id: str,
                  on_progress: Callable[[int], None] | None = None,
                  max_delete_share: float = DEFAULT_MAX_DELETE_SHARE, allow_deletions: bool = False) -> SourceStats:
    """Loads one source in one transaction: all of it, or — held back — none of it."""
    stats = SourceStats(source.name, mapping.source_location(source))
    ctx = Context(std.normalise_alias_table(mapping.organisation_aliases, mapping.university), mapping.university)
    sc = _SourceContext(ont, source, run_id, ctx)
    if source.mentions is not None:  # the parent loads first in a run (`ingest`): its current records
        sc.parent_keys = lake.record_keys(source.mentions.parent.source)
    buffers = _Buffers(lake)
    quarantine: list[dict] = []
    quarantined_keys: set[str] = set()  # keys of quarantined rows: their records keep their last version
    con = lake.con
    # An entity source's records are replaced one by one, in batches (ingest/batch.py), and a row
    # unchanged since a load standardised as this one would be is not standardised again. A mention
    # source's rows depend on the rows before them and on the parent's records: its records are all
    # written again, row by row, as are every source's on the reference path.
    fingerprint = None if source.mentions is not None or REFERENCE else standardisation_fingerprint(mapping, source)
    batch: RecordBatch | None = None
    con.execute("BEGIN TRANSACTION")
    try:
        lake.snapshot_source(source.name, copies=fingerprint is None)
        if fingerprint is None:
            lake.clear_source(source.name)
        else:
            batch = RecordBatch(sc, lake, lake.record_hashes(source.name), fingerprint, lake.fingerprint(source.name))
        with _no_cycle_collection():
            _load_rows(mapping, source, sc, buffers, batch, stats, quarantine, quarantined_keys, on_progress)
        buffers.flush()
        if source.format in ("json", "jsonl") and stats.read and not (stats.loaded or quarantined_keys):
            # JSON has no header to check: a record key path that no record has is the same mistake.
            raise readers.HeaderMismatch(f"none of the {stats.read} records has the record key path(s) "
                                         f"{', '.join(source.record_key)} (renamed in the export?)")
        if batch is None:
            stats.kept = lake.restore_records([f"{source.name}:{k}" for k in quarantined_keys - sc.seen])
        else:
            stats.kept, fingerprint = batch.finish(quarantined_keys)
        lake.set_fingerprint(source.name, fingerprint, run_id)
        _check_deletions(lake, source, stats, max_delete_share, allow_deletions)
    except readers.FileUnreadable as exc:
        where = f"after row {stats.read}" if stats.read else "at the start"
        kind = HELD_HEADER if isinstance(exc, readers.HeaderMismatch) else HELD_UNREADABLE
        return _hold_back(lake, stats, run_id, kind, f"{exc} — source held back {where}", [])
    except _DeletionGuard as exc:
        return _hold_back(lake, stats, run_id, HELD_DELETION_GUARD, str(exc), quarantine)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if quarantine:
        lake.append("quarantine", pa.Table.from_pylist(quarantine))
    changes = lake.record_changes(run_id, source.name)
    lake.record_statement_history(run_id, source.name, only_changed=batch is not None and bool(batch.skip_unchanged))
    stats.new, stats.changed, stats.deleted, stats.unchanged = (
        changes["new"], changes["changed"], changes["deleted"], changes["unchanged"])
    con.execute("COMMIT")
    if on_progress:
        on_progress(stats.read % CHUNK_ROWS)
    return stats


def _load_rows(mapping: Mapping, source: Source, sc: _SourceContext, buffers: _Buffers, batch: RecordBatch | None,
               stats: SourceStats, quarantine: list[dict], quarantined_keys: set[str],
               on_progress: Callable[[int], None] | None) -> None:
    """Reads the source's rows into the batch or, row by row, the buffers (loaded), or the quarantine list."""
    run_id, lake = sc.run_id, buffers.lake
    ods_columns: set[str] = set()
    for row in read_source(mapping, source):
        stats.read += 1
        try:
            if row.problem is not None:
                raise _Quarantine(*row.problem, key=_readable_key(source, row))
            if batch is not None:
                key, row_hash = _checked_key(sc, row)
                sc.seen.add(key)
                stats.loaded += 1
                batch.add(row.row_no, key, row_hash, row.values)
                if len(batch) >= BATCH_ROWS:
                    batch.flush()
                if stats.read % CHUNK_ROWS == 0 and on_progress:
                    on_progress(CHUNK_ROWS)
                continue
            rows = _record_rows(sc, row)
        except _Quarantine as q:
            stats.quarantined += 1
            if q.key is not None:
                quarantined_keys.add(q.key)
            quarantine.append({"run_id": run_id, "source": source.name, "file": stats.file,
                               "row_no": row.row_no, "field": q.field_name, "reason": q.reason,
                               "raw": row.raw.encode("utf-8", "backslashreplace").decode()[:2000]})
            if len(stats.problems) < 5:
                stats.problems.append(f"{stats.file} row {row.row_no}, field {q.field_name}: {q.reason}")
            continue
        stats.loaded += 1
        if not ods_columns.issuperset(row.values):
            ods_columns |= set(row.values)
            buffers.flush()  # the raw table widens before rows with the new columns arrive
            lake.ensure_ods(source.name, list(row.values))
        for table, items in rows.items():
            buffers.add(table, items)
        if stats.read % CHUNK_ROWS == 0:
            buffers.flush()
            if on_progress:
                on_progress(CHUNK_ROWS)
    if batch is not None:
        batch.flush()


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The row loop makes millions of short-lived dicts and tuples and no reference cycles: the
    cyclic garbage collector would only walk the (large) memos and buffers again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_deletions(lake: Lakehouse, source: Source, stats: SourceStats, max_share: float, allowed: bool) -> None:
    """The deletion guard: an export that lost many of its records is more often broken (a partial
    export, a filter left on, rows whose keys cannot be read) than a real change."""
    if allowed or source.allow_deletions:
        return
    before, deleted = lake.would_delete(source.name)
    if not before:
        return
    how = ("ingest again with --allow-deletions if the records really are gone (or set `allow_deletions: true` "
           "on this source in the mapping)")
    if stats.loaded == 0:
        raise _DeletionGuard(f"no row of the export could be loaded ({stats.read} read, {stats.quarantined} "
                             f"quarantined) while the source has {before} records ({deleted} would be deleted) — "
                             f"source held back; {how}")
    if deleted / before > max_share:
        raise _DeletionGuard(f"this load would delete {deleted} of the source's {before} records "
                             f"({deleted / before:.0%}, over ingest_max_delete_share {max_share:.0%}) — source held "
                             f"back; {how}")


def _hold_back(lake: Lakehouse, stats: SourceStats, run_id: str, kind: str, why: str,
               rows: list[dict]) -> SourceStats:
    """Rolls the source's load back: it keeps its previous state. Its rows count as quarantined;
    the quarantine table gets the rows' own problems and one entry for the file."""
    lake.con.execute("ROLLBACK")
    stats.problem = f"{stats.file}: {why}; it keeps its previous state"
    stats.held_back = kind
    stats.loaded, stats.quarantined, stats.kept = 0, stats.read, 0
    rows = [*rows, {"run_id": run_id, "source": stats.source, "file": stats.file, "row_no": None, "field": "*",
                    "reason": why, "raw": None}]
    lake.append("quarantine", pa.Table.from_pylist(rows))
    return stats


# What standardises a row besides the row: the ingest's own code, the ontology (code lists, shapes)
# and the libraries that parse names, phone numbers and characters.
_STANDARDISED_BY = (Path(__file__).parent, Path(__file__).parent.parent / "ontology")
_STANDARDISING_LIBRARIES = ("phonenumbers", "pypinyin", "opencc")


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    # The Python version: its Unicode tables (NFKC) standardise text.
    digest = hashlib.sha256(sys.version.encode())
    for folder in _STANDARDISED_BY:
        for path in sorted(p for p in folder.iterdir() if p.suffix in (".py", ".ttl", ".json", ".yaml")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for library in _STANDARDISING_LIBRARIES:
        try:
            digest.update(f"{library}={importlib.metadata.version(library)}".encode())
        except importlib.metadata.PackageNotFoundError:
            continue
    return digest.hexdigest()


def standardisation_fingerprint(mapping: Mapping, source: Source) -> str:
    """Everything a row's standardised record depends on besides the row itself: the source's
    declaration, the mapping's organisation aliases and university, and the code. While a source's
    fingerprint is the one of its last load, a row with the same content hash gives the same record
    (RecordBatch adds the export's columns)."""
    declared = json.dumps({"source": source.model_dump(mode="json"), "aliases": mapping.organisation_aliases,
                           "university": mapping.university,
                           "year": dt.date.today().year},  # a birth date after this year is implausible
                          sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{_code_fingerprint()}\0{declared}".encode()).hexdigest()


def ingest(mapping: Mapping, lake: Lakehouse, mapping_path: str = "",
           on_source: Callable[[Source], Callable[[int], None] | None] | None = None,
           thresholds: quality.Thresholds | None = None, *,
           max_delete_share: float = DEFAULT_MAX_DELETE_SHARE, allow_deletions: bool = False) -> IngestResult:
    """Loads every source, then measures quality for the run (kept for the trend).
    `max_delete_share` and `allow_deletions`: the deletion guard (see `ingest_source`)."""
    ont = load_ontology()
    run_id = lake.begin_run(mapping_path, mapping.sha256, mapping.university)
    results = []
    # Mention sources after the entity sources: a mention attaches to its parent's current records.
    ordered = sorted(mapping.sources, key=lambda s: s.mentions is not None)
    try:
        for source in ordered:
            lake.register_source(source)
            progress = on_source(source) if on_source else None
            try:
                stats = ingest_source(lake, ont, mapping, source, run_id, progress, max_delete_share,
                                      allow_deletions)
            except Exception as exc:  # e.g. a missing database driver: held back like an unreadable file
                stats = SourceStats(source.name, mapping.source_location(source), problem=(
                    f"{mapping.source_location(source)}: {type(exc).__name__}: {exc} — source held back; "
                    "it keeps its previous state"))
            lake.record_stats(run_id, source, stats)
            results.append(stats)
        held_back = [s.source for s in results if s.problem]
        lake.finish_run(run_id, "completed_with_errors" if held_back else "completed",
                        f"held back: {', '.join(held_back)}" if held_back else None)
    except BaseException as exc:  # the run's row must not stay `running`
        lake.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    report = quality.assess_and_store(lake, run_id, thresholds)
    return IngestResult(run_id, results, quality.with_trend(lake, report))
