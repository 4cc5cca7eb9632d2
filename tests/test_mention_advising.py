"""Advising as evidence for a name-only author (resolution/mentions.py), measured on the
university's own author lists, on a small university run through the real command line.

Every PhD student here publishes with the supervisor (the first pass links them by unique names,
and so measures it); then of three 李明 in 物理学院 — a professor and two PhD students of different
supervisors —

- 李明 beside 郑国强 is 郑国强's student, 李明 beside 钱文华 is 钱文华's;
- 李明 alone is the professor: a student named without the supervisor is, on this university's
  lists, unlikely to be that student;

and undergraduates, who never appear in the author table, are weighed as such (kind 人员类别)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campus_kg.workspace import Workspace
from ingest.lakehouse import Lakehouse
from tests.samples import AUTHOR_TABLE_SOURCES, HR_SOURCE, born, resolve_notes, run_mapping, write_csv

COLLEGES = ["物理学院", "化学学院", "数学学院"]
# Supervisors with unique names, and a PhD student each, unique too: what the first pass links.
SUPERVISORS = [(f"{200001 + i}", s + g, COLLEGES[i % 3])
               for i, (s, g) in enumerate((s, g) for s in "郭何高林罗梁谢唐许韩冯邓曹彭曾萧" for g in ("晓东", "雪梅", "建国"))]
PHDS = [(f"B{300001 + i}", s + g, unit, advisor)
        for i, ((advisor, _, unit), (s, g)) in enumerate(zip(SUPERVISORS, ((s, g) for s in "田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
                                                                            for g in ("子涵", "一鸣", "思远"))))]
STAFF = SUPERVISORS + [("100001", "李明", "物理学院"), ("100002", "郑国强", "物理学院"), ("100003", "钱文华", "物理学院")]
PHDS += [("B400001", "李明", "物理学院", "100002"), ("B400002", "李明", "物理学院", "100003")]
UNDERGRADUATES = [(f"U{500001 + i}", s + g, COLLEGES[i % 3])
                  for i, (s, g) in enumerate((s, g) for s in "姚卢姜崔钟谭陆汪" for g in ("家豪", "欣怡", "浩然", "梓萱"))]

MAPPING = """
version: 1
university: 云岭理工大学
sources:
""" + HR_SOURCE + """  - name: graduates
    path: graduates.csv
    encoding: utf-8
    system: YJS
    system_name: 研究生管理系统
    department: 研究生院
    table: 研究生学籍
    entity_type: Person
    record_key: [学号]
    fields:
      学号: {property: student_no}
      姓名: {property: name}
      出生日期: {property: birth_date}
      院系: {property: org_name}
      培养层次: {property: degree_level}
    relationships:
      - {type: ADVISES, column: 导师工号, target: Person, match_on: staff_no, direction: in}
  - name: undergraduates
    path: undergraduates.csv
    encoding: utf-8
    system: JW
    system_name: 教务管理系统
    department: 教务处
    table: 本科生
    entity_type: Person
    record_key: [学号]
    fields:
      学号: {property: student_no}
      姓名: {property: name}
      出生日期: {property: birth_date}
      学院: {property: org_name}
""" + AUTHOR_TABLE_SOURCES


@pytest.fixture(scope="module")
def university(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mention-advising")
    exports = root / "exports"
    exports.mkdir()
    write_csv(exports, "hr", ["工号", "姓名", "出生日期", "所在单位"],
              [[no, name, born(i), unit] for i, (no, name, unit) in enumerate(STAFF)])
    write_csv(exports, "graduates", ["学号", "姓名", "出生日期", "院系", "培养层次", "导师工号"],
              [[no, name, born(100 + i), unit, "博士", advisor] for i, (no, name, unit, advisor) in enumerate(PHDS)])
    write_csv(exports, "undergraduates", ["学号", "姓名", "出生日期", "学院"],
              [[no, name, born(200 + i), unit] for i, (no, name, unit) in enumerate(UNDERGRADUATES)])
    # each supervisor first author with the student second; a few undergraduates' namesakes stay outside
    authors = []
    for i, ((_, supervisor, unit), (_, student, _, _)) in enumerate(zip(SUPERVISORS, PHDS)):
        authors += [[f"CG{i}", "1", supervisor, unit], [f"CG{i}", "2", student, unit]]
    authors += [["CGZ", "1", "郑国强", "物理学院"], ["CGZ", "2", "李明", "物理学院"],
                ["CGQ", "1", "钱文华", "物理学院"], ["CGQ", "2", "李明", "物理学院"],
                ["CGL", "1", "李明", "物理学院"]]
    write_csv(exports, "authors", ["成果编号", "作者序号", "作者姓名", "作者单位"], authors)
    write_csv(exports, "outputs", ["成果编号", "成果名称"],
              [[f"CG{i}", f"论文{i}"] for i in range(len(SUPERVISORS))] + [[k, k] for k in ("CGZ", "CGQ", "CGL")])
    return run_mapping(exports, MAPPING, root / "ws")


def _linked(ws: Path) -> dict[tuple[str, int], tuple[str | None, str]]:
    """(record, position) -> (the linked person's records, rule)."""
    with Lakehouse(Workspace.at(ws).lakehouse, read_only=True) as lake:
        rows = lake.con.execute("""
            SELECT m.record_id, m.position, m.rule,
                   (SELECT string_agg(l.member_id, ',' ORDER BY l.member_id) FROM res_link l
                    WHERE l.master_id = m.master_id)
            FROM res_mention m""").fetchall()
    return {(record, position): (members, rule) for record, position, rule, members in rows}


def test_a_student_beside_the_supervisor_is_that_supervisors_student(university):
    linked = _linked(university)
    assert linked[("outputs:CGZ", 2)] == ("graduates:B400001", "mention:name+advising")
    assert linked[("outputs:CGQ", 2)] == ("graduates:B400002", "mention:name+advising")


def test_a_student_named_without_the_supervisor_is_unlikely(university):
    assert _linked(university)[("outputs:CGL", 1)][0] == "hr:100001"  # the professor 李明


def test_advising_and_kinds_are_measured_and_reported(university):
    notes = resolve_notes(university)
    assert "advising 指导关系 (a student's advisor 学生的导师 named in the record): 1.000" not in notes  # add-one
    assert "advising 指导关系 (a student's advisor 学生的导师 named in the record)" in notes
    kinds = notes.split("kind 人员类别 (AUTHOR_OF;")[1].split("bits):")[1].split(";")[0]
    weights = {kind.rsplit(" ", 2)[0].strip(): float(kind.rsplit(" ", 1)[1]) for kind in kinds.split(",")}
    assert weights["博士"] > 0 and weights["staff 教职工"] > 0 and weights["student 学生"] < -3, weights
