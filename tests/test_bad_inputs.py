"""The bad-input corpus: no crash, a message naming file and row, and read = loaded + quarantined."""

import io
import os
import random

import openpyxl
import pytest

from ingest.lakehouse import Lakehouse
from ingest.load import ingest
from ingest.mapping import load_mapping

HEADER = "工号,姓名,身份证号"
GOOD = "100001,张伟,11010519491231002X"


def _mapping(path: str, fmt: str = "csv", encoding: str = "auto") -> str:
    return f"""
version: 1
sources:
  - name: staff
    path: {path}
    format: {fmt}
    encoding: {encoding}
    system: HR
    system_name: 人事系统
    department: 人事处
    table: 教职工
    entity_type: Person
    record_key: [工号]
    fields:
      工号: {{property: staff_no}}
      姓名: {{property: name}}
      身份证号: {{property: id_number}}
"""


def _xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    for row in (HEADER.split(","), GOOD.split(","), ["100002", "李娜", ""]):
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _lines(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode("utf-8")


rng = random.Random(7)
CORPUS = {
    # name: (file bytes, file name, format, declared encoding, expected (read, loaded, quarantined),
    #        expected quarantine (row, field, words in the reason) or a file problem's words)
    "empty file": (b"", "staff.csv", "csv", "auto", (0, 0, 0), "empty"),
    "header only": (_lines(HEADER), "staff.csv", "csv", "auto", (0, 0, 0), None),
    # declared UTF-8, but one row was written by a GBK system
    "wrong declared encoding": ((HEADER + "\n").encode("utf-8") + "100002,李娜,\n".encode("gbk")
                                + (GOOD + "\n").encode("utf-8"),
                                "staff.csv", "csv", "utf-8", (2, 1, 1), (2, "姓名", "not utf-8")),
    "ragged rows": (_lines(HEADER, GOOD, "100002,李娜", "100003,王芳,,extra"), "staff.csv", "csv", "auto",
                    (3, 1, 2), (3, "*", "cells")),
    "embedded newlines": (_lines(HEADER, '100001,"张\n伟",11010519491231002X', "100002,李娜,,"), "staff.csv", "csv",
                          "auto", (2, 1, 1), (4, "*", "cells")),
    "BOM": (b"\xef\xbb\xbf" + _lines(HEADER, GOOD), "staff.csv", "csv", "auto", (1, 1, 0), None),
    "10 MB field": (_lines(HEADER, GOOD, "100002," + "长" * 10_000_000 + ","), "staff.csv", "csv", "auto",
                    (2, 1, 1), (3, "姓名", "10,000,000 characters")),
    "duplicate keys": (_lines(HEADER, GOOD, GOOD), "staff.csv", "csv", "auto", (2, 1, 1),
                       (3, "工号", "duplicate record key")),
    "formula injection": (_lines(HEADER, GOOD, "100002,=cmd|' /C calc'!A0,"), "staff.csv", "csv", "auto",
                          (2, 1, 1), (3, "姓名", "formula")),
    "binary junk": (_lines(HEADER) + bytes(rng.randrange(256) for _ in range(4096)) + b"\n" + _lines(GOOD),
                    "staff.csv", "csv", "auto", None, "binary"),
    "truncated xlsx": (_xlsx_bytes()[:900], "staff.xlsx", "xlsx", "auto", (0, 0, 0), "xlsx"),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_input(case, tmp_path):
    data, name, fmt, encoding, counts, expect = CORPUS[case]
    (tmp_path / name).write_bytes(data)
    (tmp_path / "mapping.yaml").write_text(_mapping(name, fmt, encoding), encoding="utf-8")
    with Lakehouse(tmp_path / "lake.duckdb") as lake:
        stats = ingest(load_mapping(tmp_path / "mapping.yaml"), lake).sources[0]
        quarantined = lake.con.execute(
            "SELECT file, row_no, field, reason FROM quarantine ORDER BY row_no NULLS FIRST").fetchall()
        loaded = lake.con.execute("SELECT count(*) FROM dwd_record").fetchall()[0][0]
    assert stats.read == stats.loaded + stats.quarantined, case
    assert loaded == stats.loaded
    if counts is not None:
        assert (stats.read, stats.loaded, stats.quarantined) == counts
    if isinstance(expect, tuple):
        row, field, words = expect
        assert any(q[1] == row and q[2] == field and words in q[3] and q[0].endswith(name) for q in quarantined), \
            quarantined
    elif expect == "binary":
        # random bytes: every junk row is quarantined by row number and reason; the good row loads
        assert stats.loaded == 1 and stats.quarantined == stats.read - 1 >= 1
        assert all(q[0].endswith(name) and q[1] and q[3] for q in quarantined)
    elif expect is not None:  # the whole file: the problem names the file
        assert stats.problem and expect in stats.problem.lower() and name in stats.problem
        assert quarantined and quarantined[0][0].endswith(name)
    else:
        assert stats.problem is None and not quarantined


def test_a_broken_export_keeps_the_previous_state(tmp_path):
    (tmp_path / "mapping.yaml").write_text(_mapping("staff.csv"), encoding="utf-8")
    (tmp_path / "staff.csv").write_bytes(_lines(HEADER, GOOD, "100002,李娜,"))
    with Lakehouse(tmp_path / "lake.duckdb") as lake:
        ingest(load_mapping(tmp_path / "mapping.yaml"), lake)
        os.remove(tmp_path / "staff.csv")
        stats = ingest(load_mapping(tmp_path / "mapping.yaml"), lake).sources[0]
        assert "file not found" in stats.problem and "staff.csv" in stats.problem
        assert (stats.new, stats.changed, stats.deleted) == (0, 0, 0)
        kept = lake.con.execute("SELECT record_key FROM dwd_record ORDER BY 1").fetchall()
    assert kept == [("100001",), ("100002",)]


def _xlsx_with_header(header: list[str]) -> bytes:
    book = openpyxl.Workbook()
    for row in (header, GOOD.split(","), ["100002", "李娜", ""]):
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


RENAMED_KEY = {
    # format: (good export, the same export with its key column renamed, file name)
    "xlsx": (_xlsx_with_header(HEADER.split(",")), _xlsx_with_header(["员工号", "姓名", "身份证号"]), "staff.xlsx"),
    "jsonl": ('{"工号": "100001", "姓名": "张伟"}\n{"工号": "100002", "姓名": "李娜"}\n'.encode(),
              '{"staff_id": "100001", "姓名": "张伟"}\n{"staff_id": "100002", "姓名": "李娜"}\n'.encode(),
              "staff.jsonl"),
    "json": ('[{"工号": "100001", "姓名": "张伟"}, {"工号": "100002", "姓名": "李娜"}]'.encode(),
             '[{"id": "100001", "姓名": "张伟"}, {"id": "100002", "姓名": "李娜"}]'.encode(), "staff.json"),
}


@pytest.mark.parametrize("fmt", list(RENAMED_KEY))
def test_a_renamed_key_holds_the_source_back_in_every_format(fmt, tmp_path):
    good, renamed, name = RENAMED_KEY[fmt]
    (tmp_path / "mapping.yaml").write_text(_mapping(name, fmt), encoding="utf-8")
    (tmp_path / name).write_bytes(good)
    with Lakehouse(tmp_path / "lake.duckdb") as lake:
        assert ingest(load_mapping(tmp_path / "mapping.yaml"), lake).sources[0].loaded == 2
        (tmp_path / name).write_bytes(renamed)
        stats = ingest(load_mapping(tmp_path / "mapping.yaml"), lake).sources[0]
        kept = lake.con.execute("SELECT record_key FROM dwd_record ORDER BY 1").fetchall()
    assert stats.held_back == "header" and "工号" in stats.problem and name in stats.problem
    assert (stats.read, stats.loaded, stats.deleted) == (stats.quarantined, 0, 0)
    assert kept == [("100001",), ("100002",)]
