"""Record-to-entity matching (resolution/entity_match.py) through the command line, on a small
university written here: an HR export and library cards give each staff member an entity of two
records; finance payees (name, unit, bank account: no identifier) and card-office records are the
weakly identified ones.

Planted: payees with a unique name (linked), two namesakes in one college (one review item, no
link), an outsider who shares a staff member's name but names their own institution (not linked),
a card whose staff number was typed with two digits swapped (linked to its person), and a payee
whose name a staff member and an undergraduate of one college share (the staff member's: the
payees linked so far are all staff)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from ingest.lakehouse import Lakehouse
from tests.samples import write_csv

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "建国志强秀英丽华明辉晓燕文博思远海涛雪梅俊杰佳怡子轩雨婷浩然欣悦天宇梓涵宏伟静怡"
UNITS = ["计算机学院", "机械学院", "材料学院", "化工学院", "土木学院", "外国语学院"]
NAMESAKE = "王建国"  # two staff of this name in 计算机学院
OUTSIDER = ("李文博", "清华大学")  # a staff member of this name works in 机械学院


MAPPING = """version: 1
university: 测试大学
sources:
  - name: hr
    path: hr.csv
    format: csv
    system: RS
    system_name: 人事管理系统
    department: 人事处
    table: 教职工
    entity_type: Person
    record_key: [工号]
    fields:
      工号: {property: staff_no}
      姓名: {property: name}
      性别: {property: sex, codes: {男: "1", 女: "2"}}
      出生日期: {property: birth_date}
      单位: {property: org_name}
  - name: library
    path: library.csv
    format: csv
    system: TSG
    system_name: 图书管理系统
    department: 图书馆
    table: 读者
    entity_type: Person
    record_key: [读者证号]
    fields:
      读者证号: {property: staff_no, regex: "^J(\\\\d{6})$"}
      姓名: {property: name}
      单位: {property: org_name}
  - name: card
    path: card.csv
    format: csv
    system: YKT
    system_name: 一卡通系统
    department: 后勤处
    table: 持卡人
    entity_type: Person
    record_key: [卡号]
    fields:
      卡号: {property: card_no}
      姓名: {property: name}
      关联工号: {property: staff_no, optional: true}
      部门: {property: org_name}
      性别: {property: sex, codes: {男: "1", 女: "2"}}
  - name: payees
    path: payees.csv
    format: csv
    system: CW
    system_name: 财务管理系统
    department: 财务处
    table: 劳务酬金
    entity_type: Person
    record_key: [流水号]
    fields:
      收款人: {property: name}
      收款人单位: {property: org_name}
      银行卡号: {property: bank_account}
  - name: students
    path: students.csv
    format: csv
    system: JW
    system_name: 教务管理系统
    department: 教务处
    table: 本科生
    entity_type: Person
    record_key: [学号]
    fields:
      学号: {property: student_no}
      姓名: {property: name}
      学院: {property: org_name}
"""


def _university(folder: Path) -> dict:
    rng = random.Random(11)
    names: set[str] = {NAMESAKE, OUTSIDER[0]}
    staff = []
    while len(staff) < 300:
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2])))
        if name in names:
            continue
        names.add(name)
        staff.append([name, rng.choice(UNITS)])
    staff += [[NAMESAKE, "计算机学院"], [NAMESAKE, "计算机学院"], [OUTSIDER[0], "机械学院"]]
    hr, library, card, payees = [], [], [], []
    for i, (name, unit) in enumerate(staff):
        no = f"{100001 + i}"
        sex = rng.choice("男女")
        hr.append([no, name, sex, f"19{rng.randint(60, 95)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", unit])
        library.append([f"J{no}", name, unit])
        card.append([f"{880001 + i}", name, no, unit, sex])
    # the card office typed staff member 5's number with two digits swapped; no one holds that number
    typo_of = 5
    no = hr[typo_of][0]
    swapped = no[1] + no[0] + no[2:]
    assert swapped not in {r[0] for r in hr}
    card[typo_of][2] = swapped
    # 200 staff with unique three-character names are paid, some twice into one account
    paid = [i for i in range(10, 300) if len(staff[i][0]) == 3][:200]
    for n, i in enumerate(paid):
        account = f"6222{rng.randrange(10**14, 10**15)}"
        for _ in range(1 + n % 2):
            payees.append([f"CW{len(payees) + 1:06d}", staff[i][0], staff[i][1], account])
    payees.append(["CW900001", NAMESAKE, "计算机学院", f"6222{rng.randrange(10**14, 10**15)}"])
    payees.append(["CW900002", OUTSIDER[0], OUTSIDER[1], f"6217{rng.randrange(10**14, 10**15)}"])
    for i in range(12):  # other outside payees, with names nobody here bears
        payees.append([f"CW9100{i:02d}", f"欧阳{GIVEN[i]}{GIVEN[-i - 1]}", "北京大学", f"6217{rng.randrange(10**14, 10**15)}"])
    # undergraduates: most of a university, none of them paid; one shares a staff member's name and college
    students = []
    while len(students) < 300:
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2])))
        if name not in names:
            names.add(name)
            students.append([f"2024{len(students):04d}", name, rng.choice(UNITS)])
    staff_and_student = next(i for i in range(300) if i not in paid and i != typo_of)
    students.append(["20249999", staff[staff_and_student][0], staff[staff_and_student][1]])
    payees.append(["CW800001", staff[staff_and_student][0], staff[staff_and_student][1],
                   f"6222{rng.randrange(10**14, 10**15)}"])
    write_csv(folder, "students", ["学号", "姓名", "学院"], students)
    write_csv(folder, "hr", ["工号", "姓名", "性别", "出生日期", "单位"], hr)
    write_csv(folder, "library", ["读者证号", "姓名", "单位"], library)
    write_csv(folder, "card", ["卡号", "姓名", "关联工号", "部门", "性别"], card)
    write_csv(folder, "payees", ["流水号", "收款人", "收款人单位", "银行卡号"], payees)
    (folder / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return {"staff": hr, "paid": [hr[i][0] for i in paid], "typo_card": card[typo_of][0], "typo_staff": no,
            "staff_and_student": hr[staff_and_student][0]}


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("entity_match")
    src = tmp / "src"
    src.mkdir()
    planted = _university(src)
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "--mapping", str(src / "mapping.yaml"), "--workspace", str(tmp / "ws")])
    assert ran.exit_code == 0, ran.output
    with Lakehouse(tmp / "ws" / "lakehouse.duckdb", read_only=True) as lake:
        links = {(s, k): (m, r) for s, k, m, r in lake.con.execute("""
            SELECT d.source, d.record_key, l.master_id, l.rule FROM res_link l
            JOIN dwd_record d ON d.record_id = l.member_id WHERE l.entity_type = 'Person'""").fetchall()}
        review = lake.con.execute("SELECT record_a, record_b, reason, match_probability, evidence FROM res_review"
                                  ).fetchall()
        scores = lake.con.execute("SELECT item_id, master_id, match_probability, linked FROM res_entity_score").fetchall()
    payee_rows = list(csv.reader(open(src / "payees.csv", encoding="utf-8")))[1:]
    return planted, links, review, scores, payee_rows, ran.output


def test_a_payee_with_a_unique_name_and_the_right_unit_joins_its_staff_member(resolved):
    planted, links, _, _, payees, _ = resolved
    by_name = {r[1]: r[0] for r in planted["staff"]}
    internal = [p for p in payees if p[0].startswith("CW0")]
    assert len(internal) == len(planted["paid"]) * 3 // 2
    for key, name, _, _ in internal:
        master, rule = links[("payees", key)]
        assert master == links[("hr", by_name[name])][0], (key, name)
        assert rule.startswith(("entity:", "probabilistic:")), rule
    assert any(links[("payees", p[0])][1].startswith("entity:") for p in internal)


def test_namesakes_in_one_college_go_to_review_once_and_are_not_linked(resolved):
    planted, links, review, _, _, _ = resolved
    namesakes = [r[0] for r in planted["staff"] if r[1] == "王建国"]
    masters = {links[("hr", no)][0] for no in namesakes}
    assert len(masters) == 2
    assert links[("payees", "CW900001")][0] not in masters
    items = [r for r in review if "payees:CW900001" in (r[0], r[1])]
    assert len(items) == 1, items
    assert items[0][2].startswith("uncertain: record to entity, 2 candidate")


def test_an_outsider_who_shares_a_staff_members_name_stays_apart(resolved):
    planted, links, _, _, _, _ = resolved
    staff_no = next(r[0] for r in planted["staff"] if r[1] == OUTSIDER[0])
    assert links[("payees", "CW900002")][0] != links[("hr", staff_no)][0]
    for i in range(12):
        assert links[("payees", f"CW9100{i:02d}")][1] == "singleton"


def test_a_card_with_a_mistyped_staff_number_joins_its_person(resolved):
    planted, links, _, _, _, _ = resolved
    master, rule = links[("card", planted["typo_card"])]
    assert master == links[("hr", planted["typo_staff"])][0], rule


def test_every_candidate_keeps_its_posterior_for_the_calibration_table(resolved):
    _, links, _, scores, _, output = resolved
    assert scores and all(0.0 <= p <= 1.0 for _, _, p, _ in scores)
    linked_items = {item for item, _, _, linked in scores if linked}
    assert "payees:CW000001" in linked_items
    # the run says what it weighed
    assert "record-to-entity" in output and "π =" in output


def test_the_review_item_shows_the_evidence_weighed_against_the_entity(resolved):
    """The namesakes' payee: what a steward sees is the match weight of each comparison at entity
    level — the same name (+) and one of the entity's units (+) — and a posterior that is split."""
    _, _, review, _, _, _ = resolved
    item = next(r for r in review if "payees:CW900001" in (r[0], r[1]))
    evidence = json.loads(item[4])
    assert evidence["name"] > 0 and evidence["org"] > 0, evidence
    assert 0.3 < item[3] < 0.7, item  # two candidates fit equally: about half each


def test_a_payee_is_the_staff_member_not_the_undergraduate_of_the_same_name(resolved):
    """Payees linked by a unique name are all staff: the kind of person weighs for the namesakes
    (KindEvidence, measured per source), where name and college alone split the posterior."""
    planted, links, _, _, _, output = resolved
    master, rule = links[("payees", "CW800001")]
    assert master == links[("hr", planted["staff_and_student"])][0], rule
    assert master != links[("students", "20249999")][0]
    assert "kind 人员类别 (payees" in output.replace("\n", " ")
