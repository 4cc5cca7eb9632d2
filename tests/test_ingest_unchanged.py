"""A second ingest that skips the rows unchanged since the first leaves the lakehouse that writing
every record again leaves.

Two lakehouses get the same first load; the exports then change as they do between two nights
(a changed cell, a deleted row that moves the rows after it, a new record, a formula that
quarantines a known record's new row, which keeps its last version), or the mapping changes.
The second load goes through the batches that skip unchanged rows in one and through the
row-by-row reference path, which clears and writes every record again, in the other. Every table
must then agree: records and the rows they were read at, statements, flags, relations, the raw rows,
the change set, the statement history with the runs that first and last saw each statement, and
the counts per source.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from ingest import batch, load
from ingest.lakehouse import Lakehouse
from ingest.mapping import load_mapping
from ingest.readers import resolve_encoding
from ingest.synthetic import generate
from tests.test_ingest_golden import table_rows

PERSONS, SEED, MESSINESS = 300, 5, 0.3
EDITED = ("hr_staff", "jw_students", "library_readers")


def _edit_export(mapping_path: Path, source_name: str) -> None:
    """Edits the export in place, line by line, leaving every other line's bytes as they were."""
    mapping = load_mapping(mapping_path)
    source = next(s for s in mapping.sources if s.name == source_name)
    path = mapping.source_path(source)
    encoding = resolve_encoding(path, source.encoding).removesuffix("-sig")
    delimiter = "\t" if source.format == "tsv" else ","
    data = path.read_bytes()
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(newline)
    header = next(csv.reader([lines[0].decode(encoding).lstrip("\ufeff")], delimiter=delimiter))
    key = header.index(source.record_key[0])
    simple = [i for i, line in enumerate(lines[1:], start=1) if line and b'"' not in line]

    def cells(i: int) -> list[str]:
        return next(csv.reader([lines[i].decode(encoding)], delimiter=delimiter))

    def line(values: list[str]) -> bytes:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="").writerow(values)
        return out.getvalue().encode(encoding)

    changed, formula, copied, deleted = simple[2], simple[4], simple[6], simple[3]
    values = cells(changed)
    values[1 if key != 1 else 2] += "X"  # a changed cell
    lines[changed] = line(values)
    values = cells(formula)
    values[1 if key != 1 else 2] = "=1+1"  # its key is readable: the record keeps its last version
    lines[formula] = line(values)
    values = cells(copied)
    values[key] = "NEW" + values[key]  # a new record
    lines.insert(len(lines) - 1 if not lines[-1] else len(lines), line(values))
    del lines[deleted]  # the rows after it move up one
    path.write_bytes(newline.join(lines))


def _edit_mapping(mapping_path: Path) -> None:
    text = mapping_path.read_text(encoding="utf-8")
    assert "男: '1'" in text
    mapping_path.write_text(text.replace("男: '1'", "男: '2'", 1), encoding="utf-8")  # one source's code changes


def tables(lake_path: Path) -> dict[str, list[str]]:
    """Every table, rows sorted; each run's id named by its place in order (the first run, the second)."""
    with Lakehouse(lake_path, read_only=True) as lake:
        con = lake.con
        runs = {r: f"<run {i}>" for i, (r,) in enumerate(con.execute(
            "SELECT run_id FROM ingest_run ORDER BY started_at").fetchall(), start=1)}
        return table_rows(con, lambda value, column_type: _named(
            json.loads(value) if column_type == "JSON" and value else value, runs))


def _named(value: object, runs: dict[str, str]) -> object:
    """A value with run ids named, and without the clock (`*_at`, `*_as_of` keys of a JSON report)."""
    if isinstance(value, dict):
        return {k: _named(v, runs) for k, v in value.items() if not k.endswith(("_at", "_as_of"))}
    if isinstance(value, list):
        return [_named(v, runs) for v in value]
    return runs.get(value, value) if isinstance(value, str) else value


def _shown(rows: set[str]) -> list[str]:
    return [row[:300] for row in sorted(rows)[:3]]


def _ingest(mapping_path: Path, lake_path: Path):
    with Lakehouse(lake_path) as lake:
        return load.ingest(load_mapping(mapping_path), lake)


@pytest.fixture(scope="module")
def first_load(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("unchanged")
    mapping_path = generate(root / "exports", persons=PERSONS, seed=SEED, messiness=MESSINESS).mapping_path
    _ingest(mapping_path, root / "first.duckdb")
    return mapping_path, root / "first.duckdb"


def _rename_column(mapping_path: Path, source_name: str, column: str) -> None:
    """Renames an optional column in the export's header: every data line stays as it was."""
    mapping = load_mapping(mapping_path)
    path = mapping.source_path(next(s for s in mapping.sources if s.name == source_name))
    data = path.read_bytes()
    first, rest = data.split(b"\n", 1)
    encoded = column.encode(resolve_encoding(path, "auto").removesuffix("-sig"))
    assert encoded in first
    path.write_bytes(first.replace(encoded, encoded + "X".encode()) + b"\n" + rest)


def _restore_export(mapping_path: Path, source_name: str, original: Path) -> None:
    mapping = load_mapping(mapping_path)
    path = mapping.source_path(next(s for s in mapping.sources if s.name == source_name))
    shutil.copy(original / path.relative_to(mapping_path.parent), path)


# Each scenario: the changes before each load after the first (the exports' folder, the original one).
SCENARIOS = {
    "exports": [lambda m, o: [_edit_export(m, s) for s in EDITED]],
    "mapping": [lambda m, o: _edit_mapping(m)],
    "nothing": [lambda m, o: None],
    # The optional column is no longer read: the same cells, another meaning.
    "renamed column": [lambda m, o: _rename_column(m, "student_affairs", "家庭经济困难等级")],
    # A record whose row is quarantined while the mapping changes keeps its version of the old mapping;
    # when its row comes back unchanged, it is standardised under the new one.
    "kept across a mapping change": [lambda m, o: (_edit_mapping(m), _edit_export(m, "hr_staff")),
                                     lambda m, o: _restore_export(m, "hr_staff", o)],
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_skipping_unchanged_rows_leaves_what_writing_every_record_leaves(scenario, first_load, tmp_path,
                                                                          monkeypatch):
    original, first = first_load
    exports = tmp_path / "exports"
    shutil.copytree(original.parent, exports)
    mapping_path = exports / original.name
    skipping, reference = tmp_path / "skipping.duckdb", tmp_path / "reference.duckdb"
    for lake in (skipping, reference):
        shutil.copy(first, lake)
    # How many rows the skipping loads did not standardise again, per load.
    skipped: list[int] = []
    add = batch.RecordBatch.add

    def counting_add(self, row_no, key, row_hash, values):
        before = len(self.unchanged_keys)
        add(self, row_no, key, row_hash, values)
        skipped[-1] += len(self.unchanged_keys) - before

    for change in SCENARIOS[scenario]:
        change(mapping_path, original.parent)
        skipped.append(0)
        with monkeypatch.context() as m:
            m.setattr(batch.RecordBatch, "add", counting_add)
            result = _ingest(mapping_path, skipping)
        with monkeypatch.context() as m:
            m.setattr(load, "REFERENCE", True)
            _ingest(mapping_path, reference)
        got, want = tables(skipping), tables(reference)
        assert got.keys() == want.keys()
        for table in want:
            assert got[table] == want[table], (
                f"{table}: reference rows missing {_shown(set(want[table]) - set(got[table]))}"
                f", rows not in the reference {_shown(set(got[table]) - set(want[table]))}")
        assert not any(s.problem for s in result.sources)
    stats = {s.source: s for s in result.sources}
    entity_rows = sum(s.loaded for s in stats.values())  # the generated mapping has no mention source
    if scenario == "exports":
        assert all(stats[s].new == 1 and stats[s].changed == 1 and stats[s].deleted == 1 and stats[s].kept == 1
                   for s in EDITED), {s: stats[s] for s in EDITED}
        assert 0 < skipped[0] < entity_rows
    elif scenario in ("mapping", "renamed column"):  # that source is standardised again, the others are not
        assert 0 < skipped[0] < entity_rows - stats["hr_staff" if scenario == "mapping" else "student_affairs"].loaded + 1
    elif scenario == "nothing":
        assert skipped[0] == entity_rows and not result.changed
    else:  # hr_staff kept a record from before the mapping changed: all of it is standardised again
        assert stats["hr_staff"].kept == 0 and skipped[1] <= entity_rows - stats["hr_staff"].loaded
