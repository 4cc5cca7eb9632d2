"""Golden test of ingest: what a run leaves in the lakehouse — every DWD table (records, statements
with their flags and originals, relations, the wide per-type tables), the raw ODS tables, the
quarantine, source_stats, the change set and the quality report — must not change when ingest is
made faster.

Two checks on the same inputs (generated data at high messiness with quarantine cases planted on
top, and the small university with a mention source from tests/test_mention_sources.py):

- against the reference path: the same ingest row by row with memoisation off (`ingest.load.REFERENCE`), every
  cell standardised afresh, row by row, as before ingest remembered anything; compared row by row;
- against tests/ingest_golden.json, fingerprints (row count, hash of the sorted rows) written by the
  ingest as it was before it was made faster (2026-12-01). It holds a digest of the inputs too: when
  the generator changes, those fingerprints no longer describe these inputs and that check is
  skipped (the first one still runs); write them again with
  `.venv/bin/python -m tests.test_ingest_golden --write` once a reviewed ingest gives the new ones.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

from ingest import load
from ingest.lakehouse import Lakehouse
from ingest.mapping import load_mapping
from ingest.readers import resolve_encoding
from ingest.synthetic import generate
from tests.test_mention_sources import _university

GOLDEN = Path(__file__).with_name("ingest_golden.json")
PERSONS, SEED, MESSINESS = 400, 11, 0.3


def make_inputs(root: Path) -> dict[str, Path]:
    generated = generate(root / "generated", persons=PERSONS, seed=SEED, messiness=MESSINESS)
    _plant_bad_rows(generated.mapping_path, "hr_staff")
    _plant_bad_rows(generated.mapping_path, "jw_students")
    return {"generated": generated.mapping_path, "mentions": _university(root / "mentions")}


def _plant_bad_rows(mapping_path: Path, source_name: str) -> None:
    """Rows the quarantine must take, appended in the export's own encoding: a duplicate key, an
    empty key, a formula, a short row, bytes that are not the encoding's text."""
    mapping = load_mapping(mapping_path)
    source = next(s for s in mapping.sources if s.name == source_name)
    path = mapping.source_path(source)
    encoding = resolve_encoding(path, source.encoding)
    with open(path, encoding=encoding, newline="") as fh:
        header, first, second, *_ = csv.reader(fh)
    encoding = encoding.removesuffix("-sig")  # appending: no second byte-order mark
    key = header.index(source.record_key[0])
    empty_key = list(second)
    empty_key[key] = ""
    formula = list(second)
    formula[key], formula[1 if key != 1 else 0] = "GOLDEN-F", "=cmd|' /C calc'!A0"
    rows = [first, empty_key, formula, second[:3], *_cross_check_rows(source, header, first)]
    with open(path, "a", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    with open(path, "ab") as fh:
        fh.write(b"GOLDEN-B," + b"\xff\xfe\xfd" * 3 + b"," * (len(header) - 2) + b"\r\n")


def _cross_check_rows(source, header: list[str], row: list[str]) -> list[list[str]]:
    """New records that repeat one record's values in other combinations: the same ID number with a
    birth date or sex that agrees and one that does not, a month-only birth date, the legacy 15-digit
    form, a traditional name with spaces, a phone and an e-mail that are not. A standardisation
    remembered per value must still be cross-checked per row."""
    column = {rule.property: header.index(c) for c, rule in source.rules() if c in header}
    if not {"id_number", "birth_date", "sex"} <= column.keys():
        return []
    id_number, sex = row[column["id_number"]], row[column["sex"]]
    born = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
    other_month = f"{id_number[6:10]}-{int(id_number[10:12]) % 12 + 1:02d}"
    changes = [{}, {"birth_date": "1970-01-01"}, {"sex": "女" if sex == "男" else "男"}, {"birth_date": born[:7]},
               {"birth_date": other_month}, {"id_number": id_number[:6] + id_number[8:17], "birth_date": born},
               {"name": "張 偉", "phone": "12345", "email": "not-an-address"}, {"birth_date": "1970-01-01"}]
    out = []
    for i, change in enumerate(changes):
        new = list(row)
        new[header.index(source.record_key[0])] = f"GOLDEN-{i}"
        for prop, value in change.items():
            if prop in column:
                new[column[prop]] = value
        out.append(new)
    return out


def inputs_digest(inputs: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name, mapping_path in sorted(inputs.items()):
        folder = mapping_path.parent
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{name}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ingest_tables(mapping_path: Path, lake_path: Path) -> dict[str, list[str]]:
    """Ingests once into a new lakehouse; every table's rows, normalised and sorted: the run's id,
    the clock (file times too) and the folder the inputs are in are the only things allowed to differ between two runs."""
    folder = str(mapping_path.parent)
    with Lakehouse(lake_path) as lake:
        load.ingest(load_mapping(mapping_path), lake)
        run_ids = {r[0] for r in lake.con.execute("SELECT run_id FROM ingest_run").fetchall()}
        return table_rows(lake.con, lambda value, column_type: _normalised(value, column_type, run_ids, folder))


def table_rows(con, normalise) -> dict[str, list[str]]:
    """Every table of a lakehouse but the runs and the sources' fingerprints (a digest of the ingest's
    code), without timestamp columns; each value through `normalise(value, column type)`, rows sorted."""
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
                                        "AND table_name NOT IN ('ingest_run', 'source_fingerprint') ORDER BY 1").fetchall()]
    out = {}
    for table in tables:
        columns = [(c[0], c[1]) for c in con.execute(f'DESCRIBE "{table}"').fetchall() if "TIMESTAMP" not in c[1]]
        rows = con.execute(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c, _ in columns)} FROM \"{table}\"")
        out[table] = sorted(json.dumps([normalise(v, t) for v, (_, t) in zip(row, columns, strict=True)],
                                       default=str, ensure_ascii=False) for row in rows.fetchall())
    return out


def _normalised(value: object, column_type: str, run_ids: set[str], folder: str) -> object:
    if column_type == "JSON" and value is not None:
        return _without_clock(json.loads(value), run_ids, folder)
    return _without_clock(value, run_ids, folder)


def _without_clock(value: object, run_ids: set[str], folder: str) -> object:
    if isinstance(value, dict):
        return {k: _without_clock(v, run_ids, folder) for k, v in value.items() if not k.endswith(("_at", "_as_of"))}
    if isinstance(value, list):
        return [_without_clock(v, run_ids, folder) for v in value]
    if isinstance(value, str):
        return "<run>" if value in run_ids else value.replace(folder, "<inputs>")
    return value


def fingerprints(tables: dict[str, list[str]]) -> dict[str, list]:
    return {t: [len(rows), hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest()]
            for t, rows in tables.items()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def ingested(inputs, tmp_path_factory) -> dict[str, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("golden-lake")
    return {name: ingest_tables(mapping, root / f"{name}.duckdb") for name, mapping in inputs.items()}


def test_the_inputs_hold_the_messy_cases(ingested):
    """Not a vacuous comparison: quarantine, flags, cross-check disagreements and mentions are there."""
    generated, mentions = ingested["generated"], ingested["mentions"]
    reasons = " ".join(generated["quarantine"])
    for expected in ("duplicate record key", "record key is empty", "formula injection", "cells, header has",
                     "not gbk text"):
        assert expected in reasons
    statements = " ".join(generated["dwd_statement"])
    for flag in ("disagrees with ID number", "month_precision", "invalid ID number", "upgraded from 15 digits"):
        assert flag in statements
    assert any("no record" in row for row in mentions["quarantine"])
    assert any('"authors:' in row for row in mentions["dwd_relation"])  # stated_by a mention row


@pytest.mark.parametrize("name", ["generated", "mentions"])
def test_ingest_equals_the_reference_path(name, inputs, ingested, tmp_path, monkeypatch):
    monkeypatch.setattr(load, "REFERENCE", True)
    reference = ingest_tables(inputs[name], tmp_path / "reference.duckdb")
    assert reference.keys() == ingested[name].keys()
    for table, rows in reference.items():
        got = ingested[name][table]
        missing, extra = sorted(set(rows) - set(got))[:3], sorted(set(got) - set(rows))[:3]
        assert rows == got, f"{table}: reference rows missing {missing}, rows not in the reference {extra}"


def test_ingest_equals_the_fingerprints_from_before(inputs, ingested):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    if golden["inputs"] != inputs_digest(inputs):
        pytest.skip("the generated inputs changed since tests/ingest_golden.json was written (see the docstring)")
    for name, tables in ingested.items():
        assert fingerprints(tables) == golden["fingerprints"][name], name


def _write(root: Path) -> None:
    inputs = make_inputs(root)
    prints = {name: fingerprints(ingest_tables(mapping, root / f"{name}.duckdb")) for name, mapping in inputs.items()}
    GOLDEN.write_text(json.dumps({"inputs": inputs_digest(inputs), "fingerprints": prints}, indent=1,
                                 sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp))
