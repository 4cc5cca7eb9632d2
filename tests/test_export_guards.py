"""A source never deletes records unless it was read whole and looks like the same export.

Each case corrupts one export of a small generated university (the HR staff file) after a good
first load, runs the real `campus-kg ingest`, and checks: exit code 1, the HR records exactly as
before (same versions), nothing deleted, every other source loaded, and a message naming the file.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from campus_kg.csv_safe import SafeWriter, escape_cell
from campus_kg.workspace import Workspace
from ingest.lakehouse import Lakehouse
from ingest.standardise import looks_like_formula
from ingest.synthetic import generate

HR_SOURCE = "hr_staff"
HR_FILE = "人事_教职工基本信息.csv"  # GBK, 11 columns; record key 工号


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """200 persons' exports and a workspace holding their first load."""
    root = tmp_path_factory.mktemp("guards")
    generated = generate(root / "src", persons=200, seed=31)
    result = _cli("ingest", "--mapping", str(generated.mapping_path), "--workspace", str(root / "ws"))
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def university(baseline, tmp_path):
    """A private copy of the exports and the loaded workspace: (mapping, workspace, HR file)."""
    shutil.copytree(baseline / "src", tmp_path / "src")
    shutil.copytree(baseline / "ws", tmp_path / "ws")
    return tmp_path / "src" / "mapping.yaml", tmp_path / "ws", tmp_path / "src" / "hr" / HR_FILE


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _ingest(mapping: Path, ws: Path, *extra: str):
    return _cli("ingest", "--mapping", str(mapping), "--workspace", str(ws), *extra)


def _says(output: str, words: str) -> bool:
    """Rich wraps long lines at the terminal width: compare without whitespace."""
    return "".join(words.split()) in "".join(output.split())


def _records(ws: Path, source: str = HR_SOURCE) -> list[tuple]:
    with Lakehouse(Workspace.at(ws).lakehouse, read_only=True) as lake:
        return lake.con.execute("""SELECT record_id, row_hash, version_run FROM dwd_record WHERE source = ?
            ORDER BY record_id""", [source]).fetchall()


def _latest_run(ws: Path) -> dict:
    with Lakehouse(Workspace.at(ws).lakehouse, read_only=True) as lake:
        run_id, status = lake.con.execute(
            "SELECT run_id, status FROM ingest_run ORDER BY started_at DESC LIMIT 1").fetchall()[0]
        cols = ["source", "read", "loaded", "quarantined", "new", "changed", "deleted", "problem", "held_back",
                "kept"]
        stats = {r[0]: dict(zip(cols, r, strict=True)) for r in lake.con.execute(
            f"SELECT {', '.join(cols)} FROM source_stats WHERE run_id = ?", [run_id]).fetchall()}
        changes = lake.con.execute("SELECT source, record_id, change FROM change_set WHERE run_id = ?",
                                   [run_id]).fetchall()
    return {"run_id": run_id, "status": status, "stats": stats, "changes": changes}


def _hr_rows(hr: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(hr.read_bytes().decode("gbk"), newline="")))


def _write_rows(hr: Path, rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    hr.write_bytes(out.getvalue().encode("gbk"))


def _rename_column(old: str, new: str):
    def corrupt(hr: Path) -> None:
        rows = _hr_rows(hr)
        rows[0][rows[0].index(old)] = new
        _write_rows(hr, rows)
    return corrupt


def _replace_with(data: bytes):
    return lambda hr: hr.write_bytes(data)


def _garbage_line(size: int) -> bytes:
    """One line of printable junk (commas and quotes included), no line break."""
    alphabet = bytes(b for b in range(32, 127))
    return bytes(random.Random(size).choices(alphabet, k=4096)) * (size // 4096)


def _truncate_at_half(hr: Path) -> None:
    data = hr.read_bytes()
    hr.write_bytes(data[: len(data) // 2])


def _cut_last_row(hr: Path) -> None:
    """Only the last row breaks off (the download stopped): one record, well inside the guard."""
    data = hr.read_bytes().rstrip(b"\n")
    hr.write_bytes(data[: data.rindex(b"\n") + 12])


def _header_only(hr: Path) -> None:
    hr.write_bytes(hr.read_bytes().split(b"\n", 1)[0] + b"\n")


HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
             b"<body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>\n")

# case: (corruption, held_back kind, words the message must hold)
CASES = {
    "renamed key column": (_rename_column("工号", "员工编号"), "header", "lacks column(s) the mapping reads: 工号"),
    "renamed mapped column": (_rename_column("姓名", "名字"), "header", "lacks column(s) the mapping reads: 姓名"),
    "HTML error page": (_replace_with(HTML_PAGE), "unreadable", "HTML/XML page, not an export"),
    "one 50 MB garbage line": (_replace_with(_garbage_line(50 << 20)), "header", "lacks column(s) the mapping reads"),
    "garbage line above the header": (lambda hr: hr.write_bytes(_garbage_line(1 << 16) + b"\n" + hr.read_bytes()),
                                      "header", "lacks column(s) the mapping reads"),
    "truncated file": (_truncate_at_half, "unreadable", "truncated export"),
    "last row cut off": (_cut_last_row, "unreadable", "breaks off"),
    "empty file": (_replace_with(b""), "unreadable", "the file is empty"),
    "header only": (_header_only, "deletion_guard", "no row of the export could be loaded"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_export_is_held_back_and_deletes_nothing(case, university):
    mapping, ws, hr = university
    corrupt, kind, words = CASES[case]
    before = _records(ws)
    corrupt(hr)
    result = _ingest(mapping, ws)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert _says(result.output, words) and _says(result.output, HR_FILE), result.output
    assert _records(ws) == before  # the same records, the same versions
    run = _latest_run(ws)
    assert run["status"] == "completed_with_errors"
    assert not [c for c in run["changes"] if c[2] == "deleted"]
    hr_stats = run["stats"][HR_SOURCE]
    assert hr_stats["held_back"] == kind and HR_FILE in hr_stats["problem"] and words in hr_stats["problem"]
    assert hr_stats["read"] == hr_stats["quarantined"] and hr_stats["loaded"] == 0
    others = [s for name, s in run["stats"].items() if name != HR_SOURCE]
    assert len(others) == 10 and all(s["problem"] is None and s["loaded"] == s["read"] > 0 for s in others)


def test_the_deletion_guard_holds_back_a_shrunken_export_until_allowed(university):
    mapping, ws, hr = university
    before = _records(ws)
    rows = _hr_rows(hr)
    gone = rows[1:12]  # 11 of 36 records: 31 %, over the default 20 %
    _write_rows(hr, [rows[0], *rows[12:]])

    refused = _ingest(mapping, ws)
    assert refused.exit_code == 1 and _says(refused.output, "would delete 11 of the source's 36 records")
    assert _says(refused.output, "--allow-deletions")
    assert _records(ws) == before
    assert _latest_run(ws)["stats"][HR_SOURCE]["held_back"] == "deletion_guard"

    allowed = _ingest(mapping, ws, "--allow-deletions")
    assert allowed.exit_code == 0, allowed.output
    run = _latest_run(ws)
    deleted = {c[1] for c in run["changes"] if c[2] == "deleted"}
    assert deleted == {f"{HR_SOURCE}:{r[0]}" for r in gone}
    assert run["stats"][HR_SOURCE]["held_back"] is None and len(_records(ws)) == 25


def test_a_source_may_allow_deletions_in_the_mapping(university):
    mapping, ws, hr = university
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(text.replace("  system: HR\n", "  system: HR\n  allow_deletions: true\n", 1), encoding="utf-8")
    rows = _hr_rows(hr)
    _write_rows(hr, rows[:25])
    result = _ingest(mapping, ws)
    assert result.exit_code == 0, result.output
    assert _latest_run(ws)["stats"][HR_SOURCE]["deleted"] == 12


def test_a_small_deletion_within_the_guard_goes_through(university):
    mapping, ws, hr = university
    rows = _hr_rows(hr)
    _write_rows(hr, [rows[0], *rows[2:]])
    result = _ingest(mapping, ws)
    assert result.exit_code == 0, result.output
    run = _latest_run(ws)
    assert [c for c in run["changes"] if c[2] == "deleted"] == [("hr_staff", f"hr_staff:{rows[1][0]}", "deleted")]


def test_the_guard_share_is_a_setting(university, monkeypatch):
    mapping, ws, hr = university
    monkeypatch.setenv("CAMPUS_KG_INGEST_MAX_DELETE_SHARE", "0.5")
    rows = _hr_rows(hr)
    _write_rows(hr, [rows[0], *rows[12:]])  # 31 %: under 50 %
    result = _ingest(mapping, ws)
    assert result.exit_code == 0, result.output
    assert _latest_run(ws)["stats"][HR_SOURCE]["deleted"] == 11


def test_a_quarantined_row_keeps_its_records_last_good_version(university):
    mapping, ws, hr = university
    before = {r[0]: r for r in _records(ws)}
    rows = _hr_rows(hr)
    name = rows[0].index("姓名")
    bad = {3: "=HYPERLINK(\"http://evil.example\",\"点我\")", 7: "+cmd|' /C calc'!A0", 9: "-2+3+cmd|' /C calc'!A0"}
    for i, cell in bad.items():
        rows[i][name] = cell
    rows[5][name] = "新名字"  # a real change beside them
    _write_rows(hr, rows)
    result = _ingest(mapping, ws)
    assert result.exit_code == 0, result.output  # quarantined rows are not a failed run
    after = {r[0]: r for r in _records(ws)}
    assert after.keys() == before.keys()
    for i in bad:
        record_id = f"{HR_SOURCE}:{rows[i][0]}"
        assert after[record_id] == before[record_id]  # not deleted, not changed: the previous version
    run = _latest_run(ws)
    assert run["changes"] == [(HR_SOURCE, f"{HR_SOURCE}:{rows[5][0]}", "changed")]
    stats = run["stats"][HR_SOURCE]
    assert (stats["read"], stats["loaded"], stats["quarantined"], stats["kept"]) == (36, 33, 3, 3)
    with Lakehouse(Workspace.at(ws).lakehouse, read_only=True) as lake:
        reasons = lake.con.execute("SELECT row_no, field, reason FROM quarantine WHERE run_id = ? ORDER BY row_no",
                                   [run["run_id"]]).fetchall()
        # the kept records still carry their statements and their entity row
        names = lake.con.execute("SELECT record_id, name FROM dwd_person_record WHERE record_id IN ?",
                                 [[f"{HR_SOURCE}:{rows[i][0]}" for i in bad]]).fetchall()
    assert [(r[0], r[1]) for r in reasons] == [(4, "姓名"), (8, "姓名"), (10, "姓名")]
    assert all("formula" in r[2] for r in reasons)
    assert len(names) == 3 and all(n and not n.startswith(("=", "+", "-")) for _, n in names)


def test_a_row_whose_key_is_unreadable_cannot_hide_a_deletion(university):
    """Eight rows whose keys are formulas: their records cannot be matched, so they count as deleted,
    and 8 of 36 is over the guard."""
    mapping, ws, hr = university
    before = _records(ws)
    rows = _hr_rows(hr)
    for row in rows[1:9]:
        row[0] = "=1+" + row[0]
    _write_rows(hr, rows)
    result = _ingest(mapping, ws)
    assert result.exit_code == 1 and _says(result.output, "would delete 8 of the source's 36 records")
    assert _records(ws) == before


def test_mapping_paths_stay_inside_the_mapping_folder(university, tmp_path):
    mapping, ws, hr = university
    text = mapping.read_text(encoding="utf-8")
    escaping = text.replace(f"path: hr/{HR_FILE}", "path: ../../../../../../etc/passwd", 1)
    mapping.write_text(escaping, encoding="utf-8")
    result = _ingest(mapping, ws)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert _says(result.output, f"{mapping}:") and _says(result.output, "sources[0] (hr_staff).path")
    assert _says(result.output, "/etc/passwd, outside the mapping's folder")

    # a symlink inside the folder that leads outside it is refused too
    outside = tmp_path / "elsewhere" / HR_FILE
    outside.parent.mkdir()
    shutil.copy(hr, outside)
    hr.unlink()
    hr.symlink_to(outside)
    mapping.write_text(text, encoding="utf-8")
    result = _ingest(mapping, ws)
    assert result.exit_code == 2 and _says(result.output, f"{outside}, outside the mapping's folder")

    allowed = _ingest(mapping, ws, "--allow-paths-outside")
    assert allowed.exit_code == 0, allowed.output
    mapping.write_text("allow_paths_outside: true\n" + text, encoding="utf-8")
    assert _ingest(mapping, ws).exit_code == 0


@pytest.mark.parametrize("broken", [
    "version: 1\nsources: [\n",  # not YAML
    "version: 1\nsources:\n  - name: x\n    path: x.csv\n    system: A\n    system_name: A\n    department: A\n"
    "    table: A\n    entity_type: Person\n    record_key: [k]\n    fields: {k: {property: shoe_size}}\n",
])
def test_a_bad_mapping_is_a_message_not_a_traceback(broken, tmp_path):
    (tmp_path / "mapping.yaml").write_text(broken, encoding="utf-8")
    result = _ingest(tmp_path / "mapping.yaml", tmp_path / "ws")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert _says(result.output, "mapping refused") and _says(result.output, str(tmp_path / "mapping.yaml"))
    missing = _ingest(tmp_path / "nope.yaml", tmp_path / "ws")
    assert missing.exit_code == 2 and "does not exist" in missing.output and "Traceback" not in missing.output


def test_a_sql_source_without_its_driver_is_held_back(university):
    mapping, ws, _ = university
    text = mapping.read_text(encoding="utf-8")
    sql_source = """- name: hr_db
  format: sql
  url: postgresql://reader:s3cret@db.example/hr
  sql_table: staff
  system: HRDB
  system_name: 人事数据库
  department: 人事处
  table: staff
  entity_type: Person
  record_key: [staff_no]
  fields:
    staff_no: {property: staff_no}
"""
    mapping.write_text(text.replace("sources:\n", "sources:\n" + sql_source, 1), encoding="utf-8")
    result = _ingest(mapping, ws)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _says(result.output, "the database driver for 'postgresql' is not installed")
    assert "s3cret" not in result.output
    run = _latest_run(ws)
    assert run["status"] == "completed_with_errors"
    assert run["stats"]["hr_db"]["held_back"] == "unreadable"
    assert all(s["problem"] is None for name, s in run["stats"].items() if name != "hr_db")


@pytest.mark.parametrize("cell", ["=cmd|' /C calc'!A0", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
                                  "=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1:A9)", "\t=1+1", "-1+1", "+A1"])
def test_formula_cells_are_recognised(cell):
    assert looks_like_formula(cell.strip()) or looks_like_formula(cell)


@pytest.mark.parametrize("cell", ["-3.5", "+86 138 0013 8000", "+8613800138000", "-", "-1.5e3", "+86-10-6275-1234",
                                  "-(1,234.50)", "12.5%", "张伟", "a=b"])
def test_numbers_and_phone_numbers_are_not_formulas(cell):
    assert not looks_like_formula(cell)


def test_csv_exports_escape_formula_cells():
    out = io.StringIO()
    SafeWriter(out, lineterminator="\n").writerows([["=1+1", "+86 1", "-2", "@x", "\tx", "ok", 5, -3, None]])
    assert out.getvalue() == "'=1+1,'+86 1,'-2,'@x,'\tx,ok,5,-3,\n"
    assert escape_cell("\r=1") == "'\r=1" and escape_cell("安全") == "安全"


def test_export_links_writes_no_live_formula(university):
    """`campus-kg export links` writes names the mapping chose: a table named like a formula is escaped."""
    mapping, ws, _ = university
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(text.replace("table: 教职工基本信息", "table: '=HYPERLINK(\"http://evil\")'", 1),
                       encoding="utf-8")
    assert _ingest(mapping, ws).exit_code == 0
    assert _cli("resolve", "--workspace", str(ws)).exit_code == 0
    out = ws / "links.csv"
    assert _cli("export", "links", "--workspace", str(ws), "--out", str(out)).exit_code == 0
    cells = [c for row in csv.reader(out.open(encoding="utf-8")) for c in row]
    assert "'=HYPERLINK(\"http://evil\")" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
