"""The evidence a name-only mention is weighed with (resolution/mentions.py), on a small university
run through the real command line:

- a romanised author is weighed by how many of our people carry the name's pinyin key: `Mingqian
  Wu` meets one person and links, `Wei Zhang` meets three 张伟 and stays a steward's question;
- whether a candidate is staff (their kind) counts as much as the university's own author lists say: where
  the authors linked by a unique name are staff, an author 王芳 of a college with one staff 王芳
  and two student 王芳 is the staff member's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.lakehouse import Lakehouse
from campus_kg.workspace import Workspace
from tests.samples import AUTHOR_TABLE_SOURCES, HR_SOURCE, born, resolve_notes, run_mapping, write_csv

COLLEGES = ["计算机学院", "数学学院", "物理学院", "化学学院", "外国语学院", "土木学院"]
# Staff with unique names, each the first author of one paper in an author table: what the first
# pass links, and so what says how often an author is staff.
CROWD = [(f"{200001 + i}", s + g, COLLEGES[i % len(COLLEGES)])
         for i, (s, g) in enumerate((s, g) for s in "郭何高林罗郑梁谢" for g in ("晓东", "雪梅", "建国", "海燕"))]
STAFF = CROWD + [("100001", "王芳", "物理学院"), ("100002", "吴铭倩", "计算机学院"),
                 ("100003", "张伟", "计算机学院"), ("100004", "张伟", "数学学院")]
# Students: most people of a university are; none of them writes in the author table
STUDENTS = [(f"S{300001 + i}", s + g, COLLEGES[i % len(COLLEGES)])
            for i, (s, g) in enumerate((s, g) for s in "唐许韩冯邓曹彭曾萧田" for g in ("子涵", "一鸣", "思远", "若兰", "文博"))]
STUDENTS += [("S400001", "王芳", "物理学院"), ("S400002", "王芳", "物理学院"), ("S400003", "张伟", "化学学院")]

MAPPING = """
version: 1
university: 云岭理工大学
sources:
""" + HR_SOURCE + """  - name: students
    path: students.csv
    encoding: utf-8
    system: JW
    system_name: 教务管理系统
    department: 教务处
    table: 学生
    entity_type: Person
    record_key: [学号]
    fields:
      学号: {property: student_no}
      姓名: {property: name}
      出生日期: {property: birth_date}
      学院: {property: org_name}
""" + AUTHOR_TABLE_SOURCES + """  - name: foreign
    path: foreign.csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科技处
    table: 外文成果
    entity_type: Publication
    record_key: [成果编号]
    fields:
      Title: {property: title}
    relationships:
      - {type: AUTHOR_OF, column: Authors, target: Person, match_on: author_name, direction: in, split: authors,
         properties: {rank: '@position'}}
"""


@pytest.fixture(scope="module")
def university(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mention-evidence")
    exports = root / "exports"
    exports.mkdir()
    # every person born on a day of their own: namesakes are different people
    write_csv(exports, "hr", ["工号", "姓名", "出生日期", "所在单位"],
              [[no, name, born(i), unit] for i, (no, name, unit) in enumerate(STAFF)])
    write_csv(exports, "students", ["学号", "姓名", "出生日期", "学院"],
              [[no, name, born(len(STAFF) + i), unit] for i, (no, name, unit) in enumerate(STUDENTS)])
    outputs = [[f"CG{i}", f"论文{i}"] for i in range(len(CROWD))] + [["CGW", "晶格缺陷"], ["CGR", "图的着色"]]
    write_csv(exports, "outputs", ["成果编号", "成果名称"], outputs)
    authors = [[f"CG{i}", "1", name, unit] for i, (_, name, unit) in enumerate(CROWD)]
    authors += [["CGW", "1", "王芳", "物理学院"], ["CGR", "1", "郭晓东", "计算机学院"], ["CGR", "2", "吴铭倩", ""]]
    write_csv(exports, "authors", ["成果编号", "作者序号", "作者姓名", "作者单位"], authors)
    write_csv(exports, "foreign", ["成果编号", "Title", "Authors"],
              [["WW1", "Graph colouring", "Mingqian Wu, Wei Zhang"]])
    return run_mapping(exports, MAPPING, root / "ws")


def _mentions(ws: Path) -> dict[tuple[str, int], tuple[str | None, str, str | None]]:
    """(record, position) -> (the linked person's first record, rule)."""
    return {(record, position): (member, rule) for record, position, rule, member, _ in _rows(ws)}


def _scores(ws: Path) -> dict[tuple[str, int], float]:
    """(record, position) -> the posterior of the linked (or best) candidate."""
    return {(record, position): score for record, position, _, _, score in _rows(ws)}


def _rows(ws: Path) -> list[tuple]:
    with Lakehouse(Workspace.at(ws).lakehouse, read_only=True) as lake:
        return lake.con.execute("""
            SELECT m.record_id, m.position, m.rule,
                   (SELECT min(l.member_id) FROM res_link l WHERE l.master_id = m.master_id), m.score
            FROM res_mention m""").fetchall()


def test_a_romanised_author_is_weighed_by_how_many_of_ours_carry_the_key(university):
    mentions = _mentions(university)
    assert mentions[("foreign:WW1", 1)] == ("hr:100002", "mention:name")  # Mingqian Wu: one 吴铭倩
    member, rule = mentions[("foreign:WW1", 2)]  # Wei Zhang: three 张伟, no unit to tell them apart
    assert member is None and rule == "ambiguous"
    # romanising is how a foreign list writes every name, not an error: it weighs as the characters do
    assert mentions[("outputs:CGR", 2)] == ("hr:100002", "mention:name")
    assert _scores(university)[("foreign:WW1", 1)] == pytest.approx(_scores(university)[("outputs:CGR", 2)], abs=1e-9)


def test_the_share_of_staff_among_linked_authors_settles_namesakes(university):
    mentions = _mentions(university)
    linked = [m for (record, _), m in mentions.items() if record.startswith("outputs:CG")
              and record not in ("outputs:CGW", "outputs:CGR")]
    assert all(member and member.startswith("hr:") for member, _ in linked) and len(linked) == len(CROWD)
    assert mentions[("outputs:CGW", 1)] == ("hr:100001", "mention:name")  # the staff 王芳, not a student


def test_the_kind_evidence_is_reported(university):
    notes = resolve_notes(university)
    assert "kind 人员类别 (AUTHOR_OF; of those linked / of our people, bits): staff 教职工" in notes


def test_unit_evidence_in_sql_counts_as_the_python_measure_does(university):
    """mentions._org_evidence counts in SQL (1.3 M records at 1.5 M) what OrgEvidence.measure counts
    over the entities' records in Python; both on the same resolved university."""
    from collections import defaultdict

    from resolution.entity_evidence import OrgEvidence
    from resolution.mentions import _org_evidence

    with Lakehouse(Workspace.at(university).lakehouse, read_only=True) as lake:
        groups, orgs = defaultdict(list), {}
        for master, record, unit in lake.con.execute("""
                SELECT l.master_id, p.record_id, COALESCE(p.org_name, m.org) FROM res_link l
                JOIN dwd_person_record p ON p.record_id = l.member_id
                LEFT JOIN (SELECT record_id, min(target_value) AS org FROM dwd_relation
                           WHERE rel_type = 'MEMBER_OF' GROUP BY 1) m USING (record_id)
                WHERE l.entity_type = 'Person'""").fetchall():
            groups[master].append(record)
            orgs[record] = unit
        in_sql = _org_evidence(lake.con)
    in_python = OrgEvidence.measure(groups, orgs, set())
    assert in_python.measured and in_sql.measured
    for field in ("same", "other", "m_other", "u_same"):
        assert getattr(in_sql, field) == pytest.approx(getattr(in_python, field), rel=1e-9), field
