"""Resolution on thin evidence never crashes, a resolution that did not complete is never exported
or scored, and legacy 15-digit ID numbers neither split a person nor veto a merge.

Each case writes a few records as CSV with a mapping, ingests them and runs the `campus-kg`
command line (the Typer app itself, in this process) on the workspace."""

from __future__ import annotations

import csv
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from campus_kg import pipeline
from campus_kg.cli import app
from campus_kg.workspace import Workspace
from ingest.idcard import check_character
from ingest.lakehouse import Lakehouse

quiet = Console(quiet=True)

FIELDS = {  # column -> the mapping's field rule
    "姓名": "{property: name}",
    "出生日期": '{property: birth_date, date_formats: ["%Y-%m-%d"]}',
    "性别": '{property: sex, codes: {男: "1", 女: "2"}}',
    "身份证号": "{property: id_number}",
    "学号": "{property: student_no}",
    "工号": "{property: staff_no}",
}

# Ten people; each system exports some of them with some of the columns.
PEOPLE = [
    ("欧阳修远", "1987-03-02", "男"), ("司马静怡", "1990-11-23", "女"), ("诸葛明轩", "1979-06-15", "男"),
    ("上官婉清", "1995-01-30", "女"), ("慕容子墨", "1984-09-09", "男"), ("皇甫雨桐", "1992-04-17", "女"),
    ("令狐浩然", "1976-12-01", "男"), ("东方若曦", "1999-07-08", "女"), ("尉迟俊杰", "1988-02-14", "男"),
    ("长孙梦瑶", "1993-10-05", "女"),
]


def _write_source(folder: Path, name: str, columns: list[str], rows: list[dict]) -> str:
    with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["编号", *columns], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    fields = "\n".join(f"      {c}: {FIELDS[c]}" for c in columns)
    return f"""  - name: {name}
    path: {name}.csv
    format: csv
    encoding: utf-8
    system: {name.upper()}
    system_name: {name}
    department: 测试处
    table: {name}
    entity_type: Person
    record_key: [编号]
    fields:
{fields}
"""


def _write_mapping(folder: Path, sources: dict[str, tuple[list[str], list[dict]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(_write_source(folder, name, cols, rows) for name, (cols, rows) in sources.items())
    mapping = folder / "mapping.yaml"
    mapping.write_text(f"version: 1\nuniversity: 测试大学\nsources:\n{body}", encoding="utf-8")
    return mapping


@dataclass
class Ran:
    returncode: int
    stdout: str  # whitespace runs as one space: Rich wraps long messages at the terminal's width


def _cli(*args: str) -> Ran:
    """The `campus-kg` command line, run in this process (a subprocess per call would cost seconds
    of imports each); an uncaught exception shows as a traceback in the output, as it would."""
    result = CliRunner().invoke(app, list(args))
    out = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        out += "Traceback: " + "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, " ".join(out.split()))


def _people(count: int, prefix: str) -> list[dict]:
    return [{"编号": f"{prefix}{i:03d}", "姓名": n, "出生日期": d, "性别": s, "学号": f"S{i:05d}", "工号": f"T{i:05d}"}
            for i, (n, d, s) in enumerate((PEOPLE * (count // len(PEOPLE) + 1))[:count])]


def _ingest(tmp_path: Path, sources: dict) -> tuple[Path, Path]:
    """Writes the sources and ingests them in-process (ingest is not what these tests are about)."""
    mapping = _write_mapping(tmp_path / "src", sources)
    ws = Workspace.at(tmp_path / "ws")
    pipeline.run_ingest(mapping, ws, quiet)
    return mapping, ws.root


def _resolve(tmp_path: Path, sources: dict) -> tuple[Ran, Path]:
    """`campus-kg resolve` on the ingested sources."""
    _, ws = _ingest(tmp_path, sources)
    return _cli("resolve", "--workspace", str(ws)), ws


def _resolve_in_process(tmp_path: Path, sources: dict) -> Path:
    _, ws = _ingest(tmp_path, sources)
    pipeline.run_resolve(Workspace.at(ws), quiet)
    return ws


def _masters(ws: Path) -> dict[str, str]:
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        return dict(lake.con.execute("""SELECT d.record_key, l.master_id FROM dwd_record d
            JOIN res_link l ON l.member_id = d.record_id AND l.entity_type = 'Person'""").fetchall())


# Thin evidence: (sources, what the evidence message must say is absent)
CASES = {
    "no identifiers": ({"hr": (["姓名", "出生日期", "性别"], _people(10, "H")),
                        "lib": (["姓名", "出生日期"], _people(6, "L"))}, "ID number"),
    "one source": ({"hr": (["姓名", "出生日期", "性别", "身份证号"], _people(10, "H"))}, "staff no."),
    "twenty records": ({"hr": (["姓名", "出生日期", "工号"], _people(10, "H")),
                        "xs": (["姓名", "出生日期", "学号"], _people(10, "X"))}, "sex"),
    "no dates": ({"hr": (["姓名", "性别", "工号"], _people(10, "H")),
                  "lib": (["姓名", "性别"], _people(8, "L"))}, "birth date"),
    "names only": ({"hr": (["姓名"], _people(10, "H")), "lib": (["姓名"], _people(5, "L"))}, "birth date"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_thin_evidence_resolves_and_says_what_it_had(case, tmp_path):
    sources, absent = CASES[case]
    resolved, ws = _resolve(tmp_path, sources)
    assert resolved.returncode == 0, resolved.stdout
    out = resolved.stdout
    assert "evidence 证据" in out and absent in out.split("absent 缺失")[1].split("person linkage")[0], out
    assert "prior 先验" in out
    masters = _masters(ws)
    assert len(masters) == sum(len(rows) for _, rows in sources.values())  # every record has a master
    exported = _cli("export", "links", "--workspace", str(ws), "--out", str(tmp_path / "links.csv"))
    assert exported.returncode == 0, exported.stdout
    with open(tmp_path / "links.csv", encoding="utf-8") as fh:
        assert all(r["master_id"] for r in csv.DictReader(fh))


def test_the_same_people_in_two_systems_are_joined_without_identifiers(tmp_path):
    """Name, birth date and sex agree, compound surnames are rare: the model alone joins them."""
    ws = _resolve_in_process(tmp_path, CASES["no identifiers"][0])
    masters = _masters(ws)
    assert all(masters[f"L{i:03d}"] == masters[f"H{i:03d}"] for i in range(6))
    assert len(set(masters.values())) == 10


def test_export_and_evaluate_refuse_a_resolution_that_did_not_complete(tmp_path):
    mapping, ws = _ingest(tmp_path, CASES["twenty records"][0])
    truth = tmp_path / "truth.csv"
    truth.write_text("source,record_key,entity_type,entity_id\n"
                     + "".join(f"hr,H{i:03d},Person,E{i}\nxs,X{i:03d},Person,E{i}\n" for i in range(10)),
                     encoding="utf-8")

    def refused(expected: str, commands: tuple[str, ...] = ("export", "evaluate")) -> None:
        runs = {"export": ("export", "links", "--workspace", str(ws), "--out", str(tmp_path / "links.csv")),
                "evaluate": ("evaluate", "--workspace", str(ws), "--truth", str(truth))}
        for command in commands:
            done = _cli(*runs[command])
            assert done.returncode != 0 and expected in done.stdout, done.stdout
            assert "Traceback" not in done.stdout
        assert not (tmp_path / "links.csv").exists()

    refused("resolution has not run")  # ingested, never resolved
    (ws / "model").write_text("not a directory")  # the model cannot be saved: resolve fails part way
    failed = _cli("resolve", "--workspace", str(ws))
    assert failed.returncode != 0
    refused("did not complete")
    (ws / "model").unlink()
    pipeline.run_resolve(Workspace.at(ws), quiet)
    evaluated = _cli("evaluate", "--workspace", str(ws), "--truth", str(truth))
    assert evaluated.returncode == 0 and "Person" in evaluated.stdout, evaluated.stdout

    # a truth file naming no record of the workspace scores nothing, loudly
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("source,record_key,entity_type,entity_id\nother,H000,Person,E0\nother,X000,Person,E0\n",
                         encoding="utf-8")
    evaluated = _cli("evaluate", "--workspace", str(ws), "--truth", str(elsewhere))
    assert evaluated.returncode != 0 and "none of its records" in evaluated.stdout, evaluated.stdout

    # records that changed after the last resolution are not exported with stale (or no) masters
    rows = _people(11, "H")
    with open(tmp_path / "src" / "hr.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["编号", "姓名", "出生日期", "工号"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    pipeline.run_ingest(mapping, Workspace.at(ws), quiet)
    refused("changed records after the last resolution", commands=("export",))


def _id18(region: str, birth: str, sequence: str) -> str:
    first17 = region + birth + sequence
    return first17 + check_character(first17)


def test_a_legacy_15_digit_number_links_with_the_18_digit_form(tmp_path):
    """Born in 2001: the 15 -> 18 upgrade guesses 1901, yet both numbers state the same 15 digits."""
    id18 = _id18("110105", "20010315", "123")
    id15 = "110105" + "010315" + "123"
    row = {"姓名": "欧阳修远", "出生日期": "2001-03-15", "性别": "男"}
    ws = _resolve_in_process(tmp_path, {
        "hr": (["姓名", "出生日期", "性别", "身份证号"], [{"编号": "H1", **row, "身份证号": id15}]),
        "xs": (["姓名", "出生日期", "性别", "身份证号"], [{"编号": "X1", **row, "身份证号": id18}])})
    masters = _masters(ws)
    assert masters["H1"] == masters["X1"]
    with Lakehouse(ws / "lakehouse.duckdb", read_only=True) as lake:
        rules = {r[0] for r in lake.con.execute("SELECT rule FROM res_link WHERE entity_type = 'Person'").fetchall()}
    assert rules == {"exact:id_number"}


def test_an_upgraded_number_contradicting_the_birth_date_vetoes_nothing(tmp_path):
    """The same student number joins the records although their ID numbers differ: the legacy one's
    upgraded form says 1901 while the record says 2001, so it is weak evidence, not a veto. Two
    numbers that arrived with 18 digits still keep two people apart."""
    cols = ["姓名", "出生日期", "性别", "身份证号", "学号"]
    row = {"姓名": "司马静怡", "出生日期": "2001-03-15", "性别": "女"}
    other = {"姓名": "诸葛明轩", "出生日期": "1979-06-15", "性别": "男"}
    ws = _resolve_in_process(tmp_path, {
        "hr": (cols, [{"编号": "H1", **row, "身份证号": "110105010315124", "学号": "2019001"},
                      {"编号": "H2", **other, "身份证号": _id18("110105", "19790615", "131"), "学号": "2019002"}]),
        "xs": (cols, [{"编号": "X1", **row, "身份证号": _id18("110105", "20010315", "222"), "学号": "2019001"},
                      {"编号": "X2", **other, "身份证号": _id18("310105", "19790615", "133"), "学号": "2019002"}])})
    masters = _masters(ws)
    assert masters["H1"] == masters["X1"]
    assert masters["H2"] != masters["X2"]  # two original 18-digit numbers: the veto stands
