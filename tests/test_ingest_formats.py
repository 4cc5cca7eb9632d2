"""A mapping written from scratch for exports the generator never produces: other headers,
encodings, code values and date forms, an Excel workbook, JSON Lines with nested fields, a JSON
document, and a SQLite table read through SQLAlchemy. It must ingest without code changes."""

import json
import sqlite3

import openpyxl
import pytest

from ingest.lakehouse import Lakehouse, fetch_one
from ingest.load import ingest
from ingest.mapping import load_mapping

MAPPING = """
version: 1
university: 南岭理工大学
organisation_aliases:
  计科院: 计算机科学与技术学院
  计算机系: 计算机科学与技术学院
sources:
  - name: personnel
    path: personnel.csv
    system: RSC
    system_name: 人事处系统
    department: 人事处
    table: 在职人员
    entity_type: Person
    record_key: [部门代码, 职工编号]
    fields:
      职工编号: {property: staff_no, strip_prefix: "T"}
      中文姓名: {property: name}
      性别: {property: sex, codes: {M: "1", F: "2"}}
      生日: {property: birth_date, date_formats: ["%Y/%m/%d"]}
      证件号码: {property: id_number}
      单位: {property: org_name}
      手机: {property: phone}
    relationships:
      - {type: MEMBER_OF, column: 单位, target: Organisation, match_on: org_name}
    authority: {name: 1, sex: 1}

  - name: card_holders
    path: holders.xlsx
    format: xlsx
    sheet: 持卡人
    system: YKT
    system_name: 一卡通
    department: 后勤处
    table: 持卡人
    entity_type: Person
    record_key: [卡号]
    fields:
      工号: {property: staff_no}
      姓名: {property: name}
      入职日期: {property: hire_date}

  - name: papers
    path: papers.jsonl
    format: jsonl
    system: KY
    system_name: 科研系统
    department: 科研处
    table: 论文
    entity_type: Publication
    record_key: [meta.id]
    fields:
      meta.title: {property: title}
      meta.year: {property: publication_year}
    relationships:
      - {type: AUTHOR_OF, column: authors, target: Person, match_on: author_name, direction: in, split: ";"}

  - name: devices
    path: devices.json
    format: json
    records_path: data.items
    system: ZC
    system_name: 资产系统
    department: 资产处
    table: 设备
    entity_type: Asset
    record_key: [no]
    fields:
      no: {property: asset_no}
      info.bought: {property: purchase_date}
      info.value: {property: original_value}

  - name: grad_students
    format: sql
    url: "sqlite:///{db}"
    sql_table: xs_jbxx
    system: YJS
    system_name: 研究生系统
    department: 研究生院
    table: 研究生基本信息
    entity_type: Person
    record_key: [XH]
    fields:
      XH: {property: student_no}
      XM: {property: name}
      CSNY: {property: birth_date, date_formats: ["%Y%m"]}
      XBM: {property: sex}
"""


@pytest.fixture
def exports(tmp_path):
    # GBK CSV with a composite key, traditional characters, full-width spaces, a 15-digit ID
    rows = ["部门代码,职工编号,中文姓名,性别,生日,证件号码,单位,手机",
            "D01,T1001,張　偉,M,1975/3/2,110105750302003,南岭理工大学计科院,13800138000",
            "D01,T1002,單雄信,M,1980/11/20,11010519801120069x,计算机系,+86 139 0013 9000",
            "D02,T1001,李娜,F,1990/1/5,110105199001050020,外国语学院,12345"]
    (tmp_path / "personnel.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "持卡人"
    sheet.append(["卡号", "工号", "姓名", "入职日期"])
    sheet.append([880001, 1001, "张伟", "2001-09-01"])
    sheet.append([880002, 1002.0, "单雄信", None])
    book.save(tmp_path / "holders.xlsx")

    papers = [{"meta": {"id": "W1", "title": "图谱", "year": 2023}, "authors": ["Zhang Wei", "李娜", "ZHANG, Wei"]},
              {"meta": {"id": "W2", "title": "实体消解", "year": "2024"}, "authors": ["单雄信"]}]
    (tmp_path / "papers.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in papers) + "\n",
                                           encoding="utf-8")
    devices = {"data": {"items": [{"no": "ZC-01", "info": {"name": "服务器", "bought": "2020-05-06", "value": 120000.5}},
                                  {"no": "ZC-02", "info": {"name": "显微镜"}}]}}
    (tmp_path / "devices.json").write_text(json.dumps(devices, ensure_ascii=False), encoding="utf-8")

    db = tmp_path / "yjs.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE xs_jbxx (XH TEXT, XM TEXT, CSNY TEXT, XBM INTEGER)")
        con.executemany("INSERT INTO xs_jbxx VALUES (?, ?, ?, ?)",
                        [("2023001", "王芳", "199903", 2), ("2023002", "Li Ming", "200001", 1)])
    (tmp_path / "mapping.yaml").write_text(MAPPING.replace("{db}", str(db)), encoding="utf-8")
    return tmp_path


def test_a_new_universitys_exports_ingest_with_only_a_mapping(exports):
    with Lakehouse(exports / "lake.duckdb") as lake:
        result = ingest(load_mapping(exports / "mapping.yaml"), lake)
        stats = {s.source: s for s in result.sources}
        assert {k: (s.read, s.loaded, s.quarantined) for k, s in stats.items()} == {
            "personnel": (3, 3, 0), "card_holders": (2, 2, 0), "papers": (2, 2, 0), "devices": (2, 2, 0),
            "grad_students": (2, 2, 0)}
        people = {r[0]: r[1:] for r in lake.con.execute(
            """SELECT record_id, name, sex, birth_date::VARCHAR, id_number, staff_no, phone, name_keys
               FROM dwd_person_record""").fetchall()}
        # composite key, prefix stripped, traditional -> simplified, U+3000 gone, code map, 15 -> 18 digits
        assert people["personnel:D01|T1001"][:5] == ("张伟", "1", "1975-03-02", "110105197503020033", "1001")
        assert people["personnel:D01|T1001"][5] == "+8613800138000"
        # lower-case x upper-cased; surname 单 read shan, from the traditional form as written
        assert people["personnel:D01|T1002"][3] == "11010519801120069X"
        assert people["personnel:D01|T1002"][6] == "shan|xiongxin"
        assert people["personnel:D02|T1001"][5] is None  # 12345 is no phone number: flagged, not loaded
        # xlsx: 1002.0 is the staff number 1002; SQL: 199903 is March 1999 at month precision
        assert people["card_holders:880002"][4] == "1002"
        assert people["grad_students:2023001"][1:3] == ("2", "1999-03-01")
        assert people["grad_students:2023002"][6] == "ming|li;li|ming"
        flags = dict(lake.con.execute("""SELECT s.record_id || '/' || s.property, s.flag FROM dwd_statement s
            WHERE s.flag IS NOT NULL""").fetchall())
        assert flags["personnel:D01|T1001/id_number"] == "upgraded from 15 digits"
        assert flags["personnel:D02|T1001/phone"].startswith("not a valid phone number")
        assert flags["grad_students:2023001/birth_date"] == "month_precision"
        # the university prefix and the alias table bring three spellings to one organisation name
        orgs = {r[0] for r in lake.con.execute(
            "SELECT target_value FROM dwd_relation WHERE rel_type = 'MEMBER_OF'").fetchall()}
        assert orgs == {"计算机科学与技术学院", "外国语学院"}
        # JSON Lines: nested path as key, list of authors split, romanised authors keyed both ways
        authors = lake.con.execute("""SELECT target_value, target_keys, position FROM dwd_relation
            WHERE record_id = 'papers:W1' ORDER BY position""").fetchall()
        assert [a[0] for a in authors] == ["Zhang Wei", "李娜", "ZHANG, Wei"]
        assert authors[0][1] == "wei|zhang;zhang|wei" and authors[2][1] == "zhang|wei"
        assert fetch_one(lake.con, "SELECT publication_year FROM dwd_publication_record WHERE record_id = 'papers:W2'")[0] == 2024
        # JSON document: records under data.items; a missing nested value is just empty
        assets = dict(lake.con.execute("SELECT asset_no, original_value FROM dwd_asset_record").fetchall())
        assert assets == {"ZC-01": 120000.5, "ZC-02": None}
        # raw rows kept as read
        assert fetch_one(lake.con, "SELECT 中文姓名 FROM ods_personnel WHERE _record_key = 'D01|T1002'")[0] == "單雄信"
        assert fetch_one(lake.con, 'SELECT "info.name" FROM ods_devices WHERE _record_key = \'ZC-01\'')[0] == "服务器"


def test_catalogue_lists_every_source_table_and_field_as_dcat(exports):
    from rdflib import Graph, URIRef
    from rdflib.namespace import DCAT, DCTERMS, RDF

    from ingest.catalogue import CSVW, catalogue_graph
    from ontology.model import CKG

    with Lakehouse(exports / "lake.duckdb") as lake:
        ingest(load_mapping(exports / "mapping.yaml"), lake)
        graph, n = catalogue_graph(lake)
    reparsed = Graph().parse(data=graph.serialize(format="turtle"), format="turtle")
    datasets = set(reparsed.subjects(RDF.type, DCAT.Dataset))
    assert n == len(datasets) == 5
    titles = {str(reparsed.value(d, DCTERMS.identifier)): d for d in datasets}
    personnel = titles["personnel"]
    publisher = reparsed.value(personnel, DCTERMS.publisher)
    assert str(reparsed.value(publisher, URIRef("http://xmlns.com/foaf/0.1/name"))) == "人事处"
    # the table is classified at its most protected field: the ID number is important data
    assert reparsed.value(personnel, CKG.classification) == CKG.LevelImportant
    columns = {str(reparsed.value(c, CSVW.name)): c
               for c in reparsed.objects(reparsed.value(personnel, CSVW.tableSchema), CSVW.column)}
    assert set(columns) == {"职工编号", "中文姓名", "性别", "生日", "证件号码", "单位", "手机"}
    id_col = columns["证件号码"]
    assert reparsed.value(id_col, CSVW.propertyUrl) == CKG.idNumber
    assert reparsed.value(id_col, CKG.personalInfo) == CKG.PISensitive
    assert int(reparsed.value(columns["中文姓名"], CKG.authorityRank)) == 1
    assert int(reparsed.value(columns["手机"], CKG.authorityRank)) == 9
