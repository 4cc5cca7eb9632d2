"""Mention sources (docs/mapping.md): an author table, one row per author with that author's own
unit, attaches authorships to the publications of another source instead of making records of its
own. Each case writes a small university as CSV with a mapping and runs the real `campus-kg`
command line (the Typer app, in this process) and reads the lakehouse and the Ladybug graph."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.served_graph import ServedGraph
from graph_api.store import open_store
from ingest.lakehouse import Lakehouse
from ingest.mapping import MappingError, load_mapping
from tests.graph_dump import dump
from tests.samples import HR_SOURCE, write_csv

# Two 张伟 in different colleges, and a crowd: enough people, units and authorships for resolution
# to learn how much a unit says (each person is also a library reader of the same unit) and how
# rare outsiders are.
COLLEGES = ["计算机学院", "数学学院", "物理学院", "化学学院", "外国语学院", "土木学院", "机械学院", "材料学院",
            "经济学院", "法学院", "文学院", "历史学院"]
STAFF = [("100001", "张伟", "计算机学院"), ("100002", "张伟", "数学学院"), ("100003", "李娜", "计算机学院"),
         ("100004", "王芳", "物理学院"), ("100005", "陈静", "化学学院"), ("100006", "刘洋", "数学学院"),
         ("100007", "杨磊", "物理学院"), ("100008", "黄敏", "计算机学院"), ("100009", "周杰", "化学学院"),
         ("100010", "吴霞", "外国语学院"), ("100011", "徐鹏", "计算机学院"), ("100012", "孙丽", "数学学院")]
STAFF += [(f"{200001 + i}", surname + given, COLLEGES[i % len(COLLEGES)]) for i, (surname, given) in enumerate(
    (s, g) for s in "郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董" for g in ("晓东", "雪梅", "建国", "海燕", "志强",
                                                                "春华", "文博", "丹青", "子涵", "一鸣", "思远", "若兰"))]
CROWD = STAFF[12:]
OUTPUTS = [("CG1", "图的着色", "0701"), ("CG2", "编译器优化", "0812"), ("CG3", "晶格缺陷", "0702")]
CROWD_OUTPUTS = [(f"CG{100 + i}", f"论文{i}", "0812") for i in range(len(CROWD))]
PUBLICATIONS = len(OUTPUTS) + len(CROWD_OUTPUTS)
# 成果编号, 作者序号, 作者姓名, 作者单位, 工号
AUTHORS = [("CG1", "1", "张伟", "数学学院", ""),        # the mathematician, not the computer scientist
           ("CG1", "2", "李娜", "计算机学院", ""),
           ("CG1", "3", "赵外", "北京大学", ""),        # from outside: stays external
           ("CG2", "1", "张伟", "计算机学院", ""),
           ("CG2", "2", "王小芳", "物理学院", "100004"),  # the staff number decides, whatever the name
           ("CG3", "1", "杨磊", "物理学院", ""),
           ("CG3", "2", "陈静", "化学学院", ""),
           ("CG3", "3", "周杰", "化学学院", ""),
           ("CG9", "1", "黄敏", "计算机学院", "")]       # no publication CG9: quarantined
MISSING_PARENT_ROW = 10  # CG9's line in the file (the header is line 1)
CROWD_AUTHORS = [(no, "1", name, unit, "") for (no, _, _), (_, name, unit) in zip(CROWD_OUTPUTS, CROWD)]

MAPPING = """
version: 1
university: 云岭理工大学
sources:
""" + HR_SOURCE + """    relationships:
      - {type: MEMBER_OF, column: 所在单位, target: Organisation, match_on: name}
  - name: authors                     # listed before its parent: ingest loads it after
    path: authors.csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科技处
    table: 成果作者
    record_key: [成果编号, 作者序号]
    mentions:
      parent: {source: outputs, key: [成果编号]}
      relationship: AUTHOR_OF
      name: 作者姓名
      position: 作者序号
      properties: {rank: 作者序号}
      context: {org_name: 作者单位, staff_no: 工号}
  - name: library
    path: library.csv
    encoding: utf-8
    system: TSG
    system_name: 图书管理系统
    department: 图书馆
    table: 读者信息
    entity_type: Person
    record_key: [读者证号]
    fields:
      读者证号: {property: staff_no}
      姓名: {property: name}
      单位: {property: org_name}
  - name: outputs
    path: outputs.csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科技处
    table: 科研成果
    entity_type: Publication
    record_key: [成果编号]
    fields:
      成果名称: {property: title}
    relationships:
      - {type: IN_DISCIPLINE, column: 学科代码, target: Discipline, match_on: discipline_code}
"""


def _born(i: int) -> str:
    return f"{1960 + i % 35}-{1 + i % 12:02d}-{1 + i % 28:02d}"


def _university(folder: Path, authors: list[tuple] = AUTHORS, outputs: list[tuple] = OUTPUTS,
                crowd_authors: bool = True) -> Path:
    """The exports and the mapping; `authors` and `outputs` are the rows a test names (the crowd's follow)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder, "hr", ["工号", "姓名", "出生日期", "所在单位"],
           [(no, name, _born(i), unit) for i, (no, name, unit) in enumerate(STAFF)])
    write_csv(folder, "library", ["读者证号", "姓名", "单位"], STAFF)
    write_csv(folder, "outputs", ["成果编号", "成果名称", "学科代码"], outputs + CROWD_OUTPUTS)
    write_csv(folder, "authors", ["成果编号", "作者序号", "作者姓名", "作者单位", "工号"], authors + (CROWD_AUTHORS if crowd_authors else []))
    (folder / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return folder / "mapping.yaml"


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _run(mapping: Path, workspace: Path, *extra: str):
    result = _cli("run", "--mapping", str(mapping), "--workspace", str(workspace), *extra)
    return result


def _authorships(workspace: Path) -> set[tuple[str, int, str]]:
    """(publication's record, rank, author's HR record) for every AUTHOR_OF edge of the served graph."""
    ws = Workspace.at(workspace)
    graph = ServedGraph(Settings(workspace=ws.root), ws)
    try:
        rows = graph.query("""MATCH (o:SourceRecord)-[:RESOLVED_TO]->(w:Publication)<-[a:AUTHOR_OF]-(p:Person)
                <-[:RESOLVED_TO]-(h:SourceRecord)
            WHERE o.id IN $named AND h.id STARTS WITH 'hr:'
            RETURN o.id AS work, a.rank AS rank, h.id AS author""", {"named": [f"outputs:{o[0]}" for o in OUTPUTS]})
    finally:
        graph.close()
    return {(r["work"], r["rank"], r["author"]) for r in rows}


def _graph(workspace: Path, cypher: str, params: dict | None = None) -> list[dict]:
    ws = Workspace.at(workspace)
    graph = ServedGraph(Settings(workspace=ws.root), ws)
    try:
        return graph.query(cypher, params or {})
    finally:
        graph.close()


def _dump(workspace: Path, path: str) -> dict:
    with open_store(Settings(workspace=workspace), backend="ladybug", ladybug_path=Path(path), read_only=True) as store:
        return dump(store)


def _lake(workspace: Path, sql: str, params: list | None = None) -> list[tuple]:
    with Lakehouse(Workspace.at(workspace).lakehouse, read_only=True) as lake:
        return lake.con.execute(sql, params or []).fetchall()


EXPECTED = {("outputs:CG1", 1, "hr:100002"), ("outputs:CG1", 2, "hr:100003"),
            ("outputs:CG2", 1, "hr:100001"), ("outputs:CG2", 2, "hr:100004"),
            ("outputs:CG3", 1, "hr:100007"), ("outputs:CG3", 2, "hr:100005"), ("outputs:CG3", 3, "hr:100009")}


@pytest.fixture(scope="module")
def university(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mentions")
    mapping = _university(root / "exports")
    ran = _run(mapping, root / "ws")
    assert ran.exit_code == 0, ran.output
    return mapping, root / "ws"


def test_authors_are_linked_by_their_own_unit_with_their_rank(university):
    _, ws = university
    assert _authorships(ws) == EXPECTED
    # one publication per output, not one per author row
    assert _graph(ws, "MATCH (w:Publication) RETURN count(*) AS n") == [{"n": PUBLICATIONS}]
    stated = _lake(ws, """SELECT record_id, position, target_value, mention_org, stated_by FROM dwd_relation
        WHERE stated_by IS NOT NULL AND match_on = 'name' ORDER BY 1, 2""")
    assert stated[0] == ("outputs:CG1", 1, "张伟", "数学学院", "authors:CG1|1")


def test_an_external_author_never_becomes_a_person(university):
    _, ws = university
    assert _lake(ws, "SELECT rule FROM res_mention WHERE mention = '赵外'") == [("external",)]
    assert _graph(ws, "MATCH (p:Person) WHERE p.name = '赵外' RETURN count(*) AS n") == [{"n": 0}]
    assert _graph(ws, "MATCH (p:Person) RETURN count(*) AS n") == [{"n": len(STAFF)}]


def test_the_row_that_stated_an_authorship_can_be_found(university):
    """Lineage: the author row is a source record of its own, with what it said and its load."""
    _, ws = university
    found = _graph(ws, """MATCH (s:Statement)-[:STATED_IN]->(r:SourceRecord {id: 'authors:CG1|1'})
            -[:FROM_SYSTEM]->(y:SourceSystem)
        MATCH (r)-[:LOADED_IN]->(:IngestRun)
        RETURN r.table_name AS table_name, y.id AS system, s.stated_property AS property, s.value AS value""")
    assert {(f["property"], f["value"]) for f in found} >= {("name", "张伟"), ("org_name", "数学学院"), ("rank", "1")}
    assert {(f["table_name"], f["system"]) for f in found} == {("成果作者", "KY")}
    # and the row resolves to the publication it speaks of
    assert _graph(ws, """MATCH (r:SourceRecord {id: 'authors:CG1|1'})-[t:RESOLVED_TO]->(w:Publication)
        <-[:RESOLVED_TO]-(o:SourceRecord) WHERE o.table_name = '科研成果'
        RETURN o.id AS parent, t.rule AS rule""") == [{"parent": "outputs:CG1", "rule": "mention"}]
    assert _graph(ws, """MATCH (r:SourceRecord)-[:RESOLVED_TO]->(w:Publication)<-[:AUTHOR_OF]-(p:Person)
        WHERE r.id = 'outputs:CG1' RETURN count(*) AS n""") == [{"n": 2}]  # the outsider is no edge


def test_a_mention_without_its_parent_is_quarantined_and_counted(university):
    mapping, ws = university
    quarantined = _lake(ws, "SELECT file, row_no, field, reason FROM quarantine WHERE source = 'authors'")
    assert len(quarantined) == 1
    file, row_no, field, reason = quarantined[0]
    assert Path(file) == mapping.parent / "authors.csv" and row_no == MISSING_PARENT_ROW and field == "成果编号"
    assert "'CG9'" in reason and "outputs" in reason
    stats = _lake(ws, "SELECT read, loaded, quarantined FROM source_stats WHERE source = 'authors'")
    read = len(AUTHORS) + len(CROWD_AUTHORS)
    assert stats == [(read, read - 1, 1)]


def _copy(university, tmp_path: Path) -> tuple[Path, Path]:
    """The module's university and workspace, copied: a test that loads again changes its own."""
    mapping, ws = university
    shutil.copytree(mapping.parent, tmp_path / "exports")
    shutil.copytree(ws, tmp_path / "ws")
    return tmp_path / "exports" / mapping.name, tmp_path / "ws"


def _latest_changes(ws: Path) -> list[tuple]:
    return _lake(ws, """SELECT source, record_id, change FROM change_set
        WHERE run_id = (SELECT max(run_id) FROM ingest_run) ORDER BY ALL""")


def test_reloading_either_side_keeps_the_other(university, tmp_path):
    mapping, ws = _copy(university, tmp_path)
    own = "SELECT count(*) FROM dwd_relation WHERE stated_by IS NULL AND rel_type = 'IN_DISCIPLINE'"
    mentions = "SELECT count(*) FROM dwd_relation WHERE stated_by IS NOT NULL"
    assert _lake(ws, own) == [(PUBLICATIONS,)]
    before = _lake(ws, mentions)

    # the publications are loaded again with a title changed: every mention stays
    revised = [(no, title + "第二版" if no == "CG2" else title, code) for no, title, code in OUTPUTS]
    _university(mapping.parent, outputs=revised)
    ingested = _cli("ingest", "--mapping", str(mapping), "--workspace", str(ws))
    assert ingested.exit_code == 0, ingested.output
    assert _latest_changes(ws) == [("outputs", "outputs:CG2", "changed")]
    assert _lake(ws, mentions) == before and _lake(ws, own) == [(PUBLICATIONS,)]

    # the author table loses CG1's second author: that authorship goes, the publications' own relations stay
    _university(mapping.parent, outputs=revised, authors=[a for a in AUTHORS if a[:2] != ("CG1", "2")])
    ran = _run(mapping, ws)
    assert ran.exit_code == 0, ran.output
    assert _latest_changes(ws) == [("authors", "authors:CG1|2", "deleted")]
    assert _lake(ws, own) == [(PUBLICATIONS,)]
    assert _authorships(ws) == EXPECTED - {("outputs:CG1", 2, "hr:100003")}
    assert _graph(ws, "MATCH (:Publication)-[d:IN_DISCIPLINE]->(:Discipline) RETURN count(*) AS n") == [
        {"n": PUBLICATIONS}]
    assert _graph(ws, "MATCH (w:Publication {title: '编译器优化第二版'}) RETURN count(*) AS n") == [{"n": 1}]
    # that build patched the served graph; it equals a full rebuild (the author rows' RESOLVED_TO too)
    patched = Workspace.at(ws).read_current_graph()
    assert patched["mode"] == "patch", patched
    assert _cli("build-graph", "--workspace", str(ws), "--mode", "full").exit_code == 0
    rebuilt = Workspace.at(ws).read_current_graph()
    assert rebuilt["mode"] == "full"
    assert _dump(ws, patched["path"]) == _dump(ws, rebuilt["path"])


def test_the_deletion_guard_holds_back_a_shrunken_author_table(university, tmp_path):
    mapping, ws = _copy(university, tmp_path)
    _university(mapping.parent, authors=AUTHORS[:2], crowd_authors=False)
    ingested = _cli("ingest", "--mapping", str(mapping), "--workspace", str(ws))
    assert ingested.exit_code == 1 and "ingest_max_delete_share" in ingested.output
    assert _lake(ws, """SELECT held_back FROM source_stats WHERE source = 'authors'
        AND run_id = (SELECT max(run_id) FROM ingest_run)""") == [("deletion_guard",)]
    assert _lake(ws, "SELECT count(DISTINCT stated_by) FROM dwd_relation") == [(len(AUTHORS) - 1 + len(CROWD_AUTHORS),)]


@pytest.mark.parametrize("change, message", [
    ({"parent": "{source: output, key: [成果编号]}"},
     r"mapping.yaml:\d+: sources\[1\] \(authors\)\.mentions\.parent\.source: 'output' is not a source of this mapping"),
    ({"parent": "{source: authors, key: [成果编号]}"}, r"\(authors\)\.mentions\.parent\.source: 'authors' is this source"),
    ({"parent": "{source: outputs, key: [成果编号, 作者序号]}"}, r"\.mentions\.parent\.key: outputs's record key has 1"),
    ({"relationship": "LEADS", "properties": "{}"}, r"\.mentions\.relationship: LEADS cannot join a Person to Publication"),
    ({"context": "{org_name: 作者单位, salary: 工号}"}, r"\.mentions\.context: not properties of Person: salary"),
    ({"properties": "{weight: 作者序号}"}, r"\.mentions\.properties: AUTHOR_OF has no edge property 'weight'"),
])
def test_a_wrong_mention_block_is_refused_with_its_line(tmp_path, change, message):
    mapping = _university(tmp_path)
    text = MAPPING
    for key, value in change.items():
        start = text.index(f"      {key}: ", text.index("mentions:"))
        text = text[:start] + f"      {key}: {value}" + text[text.index("\n", start):]
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match=message) as raised:
        load_mapping(mapping)
    line = int(str(raised.value).split(":")[1])
    assert f"{next(iter(change))}:" in text.splitlines()[line - 1]


def test_a_mention_source_states_no_fields(tmp_path):
    mapping = _university(tmp_path)
    mapping.write_text(MAPPING.replace("    mentions:\n", "    fields: {作者姓名: {property: name}}\n    mentions:\n"),
                       encoding="utf-8")
    with pytest.raises(MappingError, match=r"sources\[1\] \(authors\): a mention source states no fields"):
        load_mapping(mapping)


def test_an_older_workspace_gains_the_mention_columns(tmp_path):
    path = tmp_path / "lakehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE dwd_relation (record_id VARCHAR, rel_type VARCHAR, direction VARCHAR,
        target_type VARCHAR, match_on VARCHAR, target_value VARCHAR, target_keys VARCHAR, position INTEGER,
        properties JSON)""")
    con.execute("INSERT INTO dwd_relation VALUES ('a:1', 'AUTHOR_OF', 'in', 'Person', 'name', '张伟', NULL, 1, NULL)")
    con.close()
    # read-only (build-graph, evaluate right after an upgrade): the columns read as empty
    with Lakehouse(path, read_only=True) as lake:
        assert lake.con.execute("SELECT record_id, stated_by, mention_org FROM dwd_relation").fetchall() == [
            ("a:1", None, None)]
    with Lakehouse(path) as lake:  # written to: migrated
        assert lake.con.execute("SELECT record_id, stated_by, mention_org FROM dwd_relation").fetchall() == [
            ("a:1", None, None)]
    with duckdb.connect(str(path), read_only=True) as con:
        assert [r[0] for r in con.execute("DESCRIBE dwd_relation").fetchall()][-2:] == ["stated_by", "mention_org"]
