"""Quality: six dimensions per field and table, traffic lights per department, HTML and JSON reports."""

import json
import re

from typer.testing import CliRunner

from campus_kg.cli import app

MAPPING = """version: 1
sources:
  - name: hr
    path: hr.csv
    system: HR
    system_name: 人事系统
    department: 人事处
    table: 教职工
    entity_type: Person
    record_key: [工号]
    fields:
      工号: {property: staff_no}
      姓名: {property: name}
      性别: {property: sex, codes: {男: "1", 女: "2"}}
      身份证号: {property: id_number}
    authority: {name: 1}
  - name: card
    path: card.csv
    system: YKT
    system_name: 一卡通
    department: 后勤处
    table: 持卡人
    entity_type: Person
    record_key: [卡号]
    fields:
      卡号: {property: card_no}
      工号: {property: staff_no}
      姓名: {property: name}
      性别: {property: sex, codes: {M: "1", F: "2"}}
      身份证号: {property: id_number}
      电话: {property: phone}
"""
# ID numbers with valid check characters: 11010519491231002X (female), 110105197503020033 (male)
HR = ["工号,姓名,性别,身份证号", "1,张三,女,11010519491231002X", "2,李四,男,110105197503020033",
      "3,王六,男,11010519801120069X", "5,赵六,男,110105199001050039"]
# card: 张三's sex disagrees with the ID number, a wrong check character, a bad phone, a duplicate key,
# and 王六 spelt differently from HR, the authority for names
# 赵柒 has no ID number on the card: only resolution (staff number 5) says it is HR's 赵六
CARD = ["卡号,工号,姓名,性别,身份证号,电话", "9001,,张三,M,11010519491231002X,13800138000",
        "9002,,李四,M,110105197503020034,12345", "9003,,王五,F,,", "9003,,王五,F,,",
        "9004,,王陆,M,11010519801120069X,", "9005,5,赵柒,M,,"]


def _run(tmp_path, *args):
    result = CliRunner().invoke(app, [*args, "--workspace", str(tmp_path / "ws")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_quality_report_with_lights_per_department(tmp_path):
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "hr.csv").write_text("\n".join(HR) + "\n", encoding="utf-8")
    (tmp_path / "card.csv").write_text("\n".join(CARD) + "\n", encoding="utf-8")
    _run(tmp_path, "ingest", "--mapping", str(tmp_path / "mapping.yaml"))
    out = _run(tmp_path, "ingest", "--mapping", str(tmp_path / "mapping.yaml"))
    assert "read" in out and "quarantined" in out
    html, js = tmp_path / "q.html", tmp_path / "q.json"
    out = _run(tmp_path, "quality", "--html", str(html), "--json", str(js))
    assert "人事处" in out and "后勤处" in out
    report = json.loads(js.read_text(encoding="utf-8"))

    lights = {d["department"]: d["light"] for d in report["departments"]}
    assert lights == {"人事处": "green", "后勤处": "red"}
    card = next(t for t in report["tables"] if t["source"] == "card")
    fields = {(f["column"], f["property"]): f for f in card["fields"]}
    # the card system says 张三 is male; the ID number (and HR) say female
    assert fields[("性别", "sex")]["failed"]["consistency"] == 1
    # 王陆 against HR's 王六: HR is the authority for names (一数一源), so the card record is blamed
    assert fields[("姓名", "name")]["failed"]["consistency"] == 1
    assert fields[("姓名", "name")]["examples"] == [{
        "row": 6, "record_key": "9004", "value": "王陆",
        "problem": "与权威来源 HR 不一致 / differs from the authoritative source HR: 王六"}]
    assert fields[("身份证号", "id_number")]["failed"]["accuracy"] == 1  # wrong check character
    assert fields[("身份证号", "id_number")]["dimensions"]["completeness"] == 0.6
    assert fields[("电话", "phone")]["failed"]["validity"] == 1
    assert card["dimensions"]["uniqueness"] == round(1 - 1 / 6, 4)  # one duplicate key among six rows read
    assert (card["read"], card["loaded"], card["quarantined"]) == (6, 5, 1)
    hr = next(t for t in report["tables"] if t["source"] == "hr")
    assert all(f["failed"]["consistency"] == 0 for f in hr["fields"])
    assert report["worst_fields"][0]["score"] <= report["worst_fields"][-1]["score"]
    assert len(report["trend"]) == 2  # two runs so far

    # after resolution one person is one master entity, ID number or not: 赵柒 now disagrees with HR
    _run(tmp_path, "resolve")
    _run(tmp_path, "quality", "--json", str(js))
    resolved = json.loads(js.read_text(encoding="utf-8"))
    card = next(t for t in resolved["tables"] if t["source"] == "card")
    name = next(f for f in card["fields"] if f["property"] == "name")
    assert name["failed"]["consistency"] == 2
    assert any("赵六" in e["problem"] for e in name["examples"])

    page = html.read_text(encoding="utf-8")
    assert "数据质量报告" in page and "Data quality report" in page and "红" in page and "绿" in page
    assert "完整性" in page and "一致性" in page
    assert re.search(r"\d{17}[\dX]", page) is None  # no ID number in the report: examples are masked
    from ingest.lakehouse import Lakehouse
    from ingest.quality import _examples

    with Lakehouse(tmp_path / "ws" / "lakehouse.duckdb", read_only=True) as lake:
        wrong_check = _examples(lake, "card", "身份证号", "id_number", "accuracy")
    assert wrong_check[0]["value"] == "1*****************" and "check character" in wrong_check[0]["problem"]


def test_thresholds_come_from_settings(tmp_path, monkeypatch):
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "hr.csv").write_text("\n".join(HR) + "\n", encoding="utf-8")
    (tmp_path / "card.csv").write_text("\n".join(CARD) + "\n", encoding="utf-8")
    monkeypatch.setenv("CAMPUS_KG_QUALITY_GREEN", "0.5")
    monkeypatch.setenv("CAMPUS_KG_QUALITY_YELLOW", "0.2")
    _run(tmp_path, "ingest", "--mapping", str(tmp_path / "mapping.yaml"))
    js = tmp_path / "q.json"
    _run(tmp_path, "quality", "--json", str(js))
    report = json.loads(js.read_text(encoding="utf-8"))
    assert report["thresholds"]["green"] == 0.5
    assert {d["light"] for d in report["departments"]} == {"green"}


def test_quality_before_any_ingest_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["quality", "--workspace", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "run `campus-kg ingest` first" in result.output
