"""Readers for every kind of export a mapping can declare: CSV/TSV, Excel, JSON, JSON Lines, SQL.

Each reader streams `RawRow`s: a row that cannot be read still comes out, carrying the problem,
so that the ingest can quarantine it by file, row and field. A file that cannot be opened at all
raises `FileUnreadable`. Nothing is read into memory whole.

Row numbers mean what a person opening the file would see: the line where a CSV record starts
(the header is line 1), the sheet row in Excel, the line in JSON Lines, the record's position
(1-based) in a JSON array or a SQL result.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sys
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

csv.field_size_limit(sys.maxsize)

SAMPLE_BYTES = 1 << 20
PLAUSIBLE_FALLBACKS = {"big5", "big5hkscs", "cp950", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "gbk", "gb2312"}


@dataclass
class RawRow:
    row_no: int
    values: dict[str, str | None]
    raw: str  # the row as read, for the quarantine table
    problem: tuple[str, str] | None = None  # (field, reason) when the row cannot be read


class FileUnreadable(Exception):
    """The whole file (or what is left of it) cannot be read."""


class HeaderMismatch(FileUnreadable):
    """The header lacks columns the mapping reads: a renamed column, or not this export at all."""


MAX_LISTED_COLUMNS = 12


def check_columns(header: list[str], required: Collection[str], what: str = "header") -> None:
    """Every column the mapping reads must be in the header, or the export is not the one the
    mapping was written for (a renamed key column would otherwise quarantine every row and
    delete every record)."""
    have = set(header)
    missing = [c for c in required if c not in have]
    if not missing:
        return
    shown = [_shown(h) for h in header[:MAX_LISTED_COLUMNS]]
    more = f" … ({len(header)} columns)" if len(header) > MAX_LISTED_COLUMNS else ""
    raise HeaderMismatch(f"the {what} lacks column(s) the mapping reads: {', '.join(missing)} "
                         f"(renamed in the export, or not this export?); the {what} has: {', '.join(shown)}{more}")


def _shown(column: str) -> str:
    """A column name for a message: a garbage "header" can be megabytes long."""
    return column if len(column) <= 40 else column[:40] + "…"


_MARKUP_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--", b"<title", b"<script")


def refuse_markup(path: Path) -> None:
    """An HTML error or login page saved under the export's name is not an export."""
    with open(path, "rb") as fh:
        start = fh.read(1024)
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        start = start.removeprefix(bom)
    text = start.replace(b"\x00", b"").lstrip().lower()
    if text.startswith(_MARKUP_STARTS):
        raise FileUnreadable("this is an HTML/XML page, not an export (an error or login page saved as the "
                             "export file?)")


# ---- encodings ----------------------------------------------------------------------------------
def detect_encoding(path: Path) -> str:
    """BOM first; then strict UTF-8; then GB18030 (a superset of GBK and GB2312); then a guess."""
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for candidate in ("utf-8", "gb18030"):
        if _decodes(sample, candidate, complete=len(sample) < SAMPLE_BYTES):
            return candidate
    # Neither: Big5 (Hong Kong, Taiwan) or UTF-16 are plausible; a single-byte code page is not —
    # reading junk as cp1252 would hide it, so the rows are read as UTF-8 and quarantined.
    guess = from_bytes(sample).best()
    if guess is not None and codecs.lookup(guess.encoding).name in PLAUSIBLE_FALLBACKS:
        return guess.encoding
    return "utf-8"


def _decodes(sample: bytes, encoding: str, complete: bool) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        decoder.decode(sample, final=complete)  # a sample cut mid-character is not an error
    except UnicodeDecodeError:
        return False
    return True


def resolve_encoding(path: Path, declared: str) -> str:
    if declared.lower() == "auto":
        return detect_encoding(path)
    enc = codecs.lookup(declared).name
    return "utf-8-sig" if enc == "utf-8" else enc  # a BOM is never part of the first header


_SURROGATE = re.compile("[\udc80-\udcff]")


def _undecodable(text: str) -> bool:
    """Bytes the codec could not read survive as lone surrogates (errors="surrogateescape")."""
    return _SURROGATE.search(text) is not None


has_undecodable_bytes = _undecodable


# ---- delimited text ---------------------------------------------------------------------------
def read_delimited(path: Path, encoding: str, delimiter: str, max_cell_chars: int,
                   required: Collection[str] = ()) -> Iterator[RawRow]:
    # surrogateescape: undecodable bytes survive into the row, which is then quarantined by name.
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as fh:
        record = _RecordTail()
        reader = csv.reader(record.watch(fh), delimiter=delimiter)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise FileUnreadable(f"header line cannot be parsed: {exc}") from None
        if header is None:
            raise FileUnreadable("the file is empty: no header line")
        header = [h.strip().lstrip("\ufeff") or f"column_{i + 1}" for i, h in enumerate(header)]
        if _undecodable("".join(header)):
            raise FileUnreadable(f"the header line is not {encoding} text")
        check_columns(header, required)
        _check_header(header)
        start = reader.line_num + 1
        last: tuple[int, list[str], int, int] | None = None  # the last record: line, cells, quotes, lines
        while True:
            record.quotes = record.lines = 0
            try:
                cells = next(reader)
            except StopIteration:
                if last is not None:
                    record.check_complete(*last, len(header))
                return
            except csv.Error as exc:
                yield RawRow(start, {}, "", ("*", f"cannot be parsed as {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}"))
                start = reader.line_num + 1
                continue
            row_no, start = start, reader.line_num + 1
            if not cells or cells == [""]:
                continue  # a blank line is not a record
            last = (row_no, cells, record.quotes, record.lines)
            raw = "\x1f".join(cells)
            if _undecodable(raw):
                yield _checked_row(row_no, dict(zip(header, cells, strict=False)), raw, encoding, max_cell_chars)
                continue
            if len(cells) != len(header):
                yield RawRow(row_no, {}, raw, ("*", f"row has {len(cells)} cells, header has {len(header)}"))
                continue
            if _repeats_header(cells, header):
                yield RawRow(row_no, {}, raw, ("*", REPEATED_HEADER))
                continue
            yield _checked_row(row_no, dict(zip(header, cells, strict=True)), raw, encoding, max_cell_chars)


class _RecordTail:
    """Watches the lines the CSV reader takes, to tell a complete file from one that breaks off:
    Python's csv module silently ends a quoted cell at the end of the file, so a truncated export
    (or one stray quote) would otherwise read as a shorter, valid file."""

    def __init__(self) -> None:
        self.quotes = 0  # quote characters in the lines of the record being read
        self.lines = 0  # ... and how many lines it took
        self.ends_with_newline = True

    def watch(self, fh) -> Iterator[str]:
        for line in fh:
            self.quotes += line.count('"')
            self.lines += 1
            self.ends_with_newline = line.endswith(("\n", "\r"))
            yield line.replace("\x00", "\udc80")  # NUL: binary junk, not text

    def check_complete(self, row_no: int, cells: list[str], quotes: int, lines: int, columns: int) -> None:
        # An odd number of quotes in a one-line, complete last row is a literal quote in an unquoted
        # cell (`ab"c`), which the csv module reads as text.
        if quotes % 2 and (lines > 1 or not self.ends_with_newline):
            raise FileUnreadable(f"the file ends inside a quoted cell that opens in the row at line {row_no}: "
                                 "a truncated export, or a stray quote that took in every line after it")
        if not self.ends_with_newline and len(cells) < columns:
            raise FileUnreadable(f"the last row (line {row_no}) breaks off after {len(cells)} of {columns} "
                                 "cells: a truncated export?")


REPEATED_HEADER = "the header line again, as a row: two exports joined into one file?"


def _repeats_header(cells: list[str | None], header: list[str]) -> bool:
    """A row that is the header again (exports appended to one file) would load as a record keyed
    `工号` named `姓名`."""
    return [(c or "").strip().lstrip("\ufeff") for c in cells] == header


def _check_header(header: list[str]) -> None:
    seen: set[str] = set()
    for h in header:
        if h.casefold() in seen:  # SQL column names ignore case
            raise FileUnreadable(f"column {_shown(h)!r} appears twice in the header")
        seen.add(h.casefold())


def _checked_row(row_no: int, values: dict[str, str | None], raw: str, encoding: str,
                 max_cell_chars: int) -> RawRow:
    if len(raw) <= max_cell_chars and not _undecodable(raw):
        return RawRow(row_no, values, raw)  # the common case: one check over the whole row
    for column, text in values.items():
        if text is None:
            continue
        # The values stay with the row (unused but for its record key: a record whose new row is bad
        # keeps its last good version).
        if _undecodable(text):
            return RawRow(row_no, values, raw, (column, f"bytes that are not {encoding} text (binary data or a "
                                                       "wrong encoding; set `encoding` in the mapping or use auto)"))
        if len(text) > max_cell_chars:
            return RawRow(row_no, values, raw[:2000], (column, f"cell holds {len(text):,} characters, over the "
                                                               f"limit of {max_cell_chars:,}"))
    return RawRow(row_no, values, raw)


# ---- Excel ------------------------------------------------------------------------------------
def read_xlsx(path: Path, sheet: str | None, max_cell_chars: int, required: Collection[str] = ()) -> Iterator[RawRow]:
    import openpyxl  # imported here: only mappings with Excel sources pay for it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileUnreadable(f"not a readable .xlsx workbook (truncated or corrupt?): {exc}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise FileUnreadable(f"no sheet {sheet!r}; the workbook has {book.sheetnames}")
        ws = book[sheet] if sheet else book.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header_cells = next(rows, None)
        if header_cells is None:
            raise FileUnreadable("the sheet is empty: no header row")
        header = [_cell_text(h) or f"column_{i + 1}" for i, h in enumerate(header_cells)]
        check_columns(header, required, "header row")
        _check_header(header)
        row_no = 1
        while True:
            try:
                cells = next(rows)
            except StopIteration:
                return
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise FileUnreadable(f"the workbook breaks off after row {row_no}: {exc}") from None
            row_no += 1
            texts = [_cell_text(c) for c in cells]
            if all(t is None for t in texts):
                continue
            texts += [None] * (len(header) - len(texts))
            if len(texts) > len(header) and any(t is not None for t in texts[len(header):]):
                yield RawRow(row_no, {}, "\x1f".join(t or "" for t in texts),
                             ("*", f"row has values beyond the {len(header)} header columns"))
                continue
            if _repeats_header(texts[: len(header)], header):
                yield RawRow(row_no, {}, "\x1f".join(t or "" for t in texts), ("*", REPEATED_HEADER))
                continue
            values = dict(zip(header, texts[: len(header)], strict=True))
            yield _checked_row(row_no, values, "\x1f".join(t or "" for t in texts), "xlsx", max_cell_chars)
    finally:
        book.close()


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 20230001.0 is a staff number, not a float
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# ---- JSON -------------------------------------------------------------------------------------
def flatten(obj: Any, prefix: str = "") -> dict[str, str | None]:
    """Nested objects become dotted paths (`basic.name`); a list of plain values becomes one cell
    joined by `;` (so a relationship's `split: ';'` applies); a list of objects is indexed
    (`authors.0.name`)."""
    out: dict[str, str | None] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    elif isinstance(obj, list):
        out[prefix[:-1]] = ";".join(_scalar(v) or "" for v in obj)
    else:
        out[prefix[:-1]] = _scalar(obj)
    return out


def _scalar(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def read_jsonl(path: Path, encoding: str, max_cell_chars: int) -> Iterator[RawRow]:
    with open(path, encoding=encoding, errors="surrogateescape") as fh:
        for row_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            if _undecodable(text):
                yield RawRow(row_no, {}, text[:2000], ("*", f"bytes that are not {encoding} text"))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRow(row_no, {}, text[:2000], ("*", f"not valid JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(obj, dict):
                yield RawRow(row_no, {}, text[:2000], ("*", "a JSON Lines record must be an object"))
                continue
            yield _checked_row(row_no, flatten(obj), text, encoding, max_cell_chars)


def read_json(path: Path, records_path: str | None, max_cell_chars: int) -> Iterator[RawRow]:
    """A JSON array of records, or an array inside an object at `records_path` (e.g. `data.items`)."""
    import ijson

    prefix = f"{records_path}.item" if records_path else "item"
    with open(path, "rb") as fh:
        items = ijson.items(fh, prefix, use_float=True)
        row_no = 0
        while True:
            try:
                obj = next(items)
            except StopIteration:
                break
            except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
                raise FileUnreadable(f"JSON breaks off after record {row_no}: {exc}") from None
            row_no += 1
            text = json.dumps(obj, ensure_ascii=False, default=str)
            if not isinstance(obj, dict):
                yield RawRow(row_no, {}, text[:2000], ("*", "a record must be a JSON object"))
                continue
            yield _checked_row(row_no, flatten(obj), text, "json", max_cell_chars)
        if row_no == 0:
            fh.seek(0)
            if not fh.read(1):
                raise FileUnreadable("the file is empty")
            fh.seek(0)
            _refuse_without_records_array(ijson, fh, records_path)


def _refuse_without_records_array(ijson, fh, records_path: str | None) -> None:
    """No record came out: an empty array of records is an export of nothing, but a file with no
    array where the mapping says the records are (an object where an array was, a renamed
    `records_path`) is not this export — read as empty, it would delete every record of the source."""
    where = records_path or ""
    try:
        for prefix, event, _ in ijson.parse(fh):
            if prefix == where and event in ("start_array", "start_map", "string", "number", "boolean", "null"):
                if event == "start_array":
                    return
                break
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        raise FileUnreadable(f"not valid JSON: {exc}") from None
    place = f"at {records_path!r} (records_path)" if records_path else "at the top level"
    raise FileUnreadable(f"no array of records {place}: the file holds something else there (an object, a "
                         "value, or nothing) — not the export the mapping describes")


# ---- SQL --------------------------------------------------------------------------------------
def read_sql(url: str, table: str | None, query: str | None, max_cell_chars: int,
             chunk_rows: int = 10_000, required: Collection[str] = ()) -> Iterator[RawRow]:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except ImportError as exc:  # the dialect's DBAPI module (psycopg2, pymysql, oracledb...) is not installed
        dialect = url.split(":", 1)[0]
        raise FileUnreadable(f"the database driver for {dialect!r} is not installed ({exc}); install it into "
                             "campus-kg's environment") from None
    except sa.exc.SQLAlchemyError as exc:
        raise FileUnreadable(f"database URL refused: {exc.__class__.__name__}: {exc}".splitlines()[0]) from None
    try:
        if table is not None:
            stmt = sa.select(sa.Table(table, sa.MetaData(), autoload_with=engine))
        else:
            stmt = sa.text(query or "")
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
            columns = list(result.keys())
            check_columns(columns, required, "result's columns")
            for row_no, row in enumerate(result, start=1):
                values = {c: _scalar(v) if not hasattr(v, "isoformat") else v.isoformat()
                          for c, v in zip(columns, row, strict=True)}
                yield _checked_row(row_no, values, "\x1f".join(v or "" for v in values.values()), "sql",
                                   max_cell_chars)
    except sa.exc.SQLAlchemyError as exc:
        raise FileUnreadable(f"database source failed: {exc.__class__.__name__}: {exc}".splitlines()[0]) from None
    finally:
        engine.dispose()
