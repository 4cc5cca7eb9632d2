"""Picks from a resolved lakehouse, and small exports, that several tests need."""

from __future__ import annotations


def persons_without_id_number(lake, n: int = 2) -> list[tuple[str, str]]:
    """(a record, its master) for `n` persons none of whose records has a valid ID number: nothing
    but a steward's word can join two of them."""
    return lake.con.execute("""SELECT min(l.member_id), l.master_id FROM res_link l
        JOIN dwd_person_record p ON p.record_id = l.member_id WHERE l.entity_type = 'Person'
        GROUP BY l.master_id HAVING count(p.id_number) = 0 ORDER BY l.master_id LIMIT ?""", [n]).fetchall()


def demo_copy(demo, root):
    """A copy of the session's demo workspace at `root/ws`, its exports in `ws/sources`: (workspace,
    settings pointing at it, the copied mapping)."""
    import shutil

    from campus_kg.workspace import Workspace

    shutil.copytree(demo.workspace.root, root / "ws")
    shutil.copytree(demo.generated.mapping_path.parent, root / "ws" / "sources")
    ws = Workspace.at(root / "ws")
    return ws, demo.settings.model_copy(update={"workspace": ws.root}), ws.root / "sources" / demo.generated.mapping_path.name


def run_mapping(exports, mapping: str, ws):
    """Writes `mapping` as exports/mapping.yaml and runs `campus-kg run` on it into `ws` (it must succeed)."""
    from typer.testing import CliRunner

    from campus_kg.cli import app

    (exports / "mapping.yaml").write_text(mapping, encoding="utf-8")
    ran = CliRunner().invoke(app, ["run", "--mapping", str(exports / "mapping.yaml"), "--workspace", str(ws)])
    assert ran.exit_code == 0, ran.output
    return ws


def resolve_notes(ws) -> str:
    """What the latest resolve of workspace `ws` said of its evidence (res_run.message)."""
    from campus_kg.workspace import Workspace
    from ingest.lakehouse import Lakehouse

    with Lakehouse(Workspace.at(ws).lakehouse, read_only=True) as lake:
        return lake.con.execute("SELECT message FROM res_run ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]


def born(i: int) -> str:
    """A birth date for the i-th person of a small export: namesakes born apart are different people."""
    return f"{1960 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}"


def write_csv(folder, name: str, header: list[str], rows: list[list[str]]) -> None:
    """An export as a UTF-8 CSV file `folder/name.csv`."""
    import csv

    with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


# Mapping blocks several small universities share (YAML, indented as items of `sources:`): an HR
# export (工号, 姓名, 出生日期, 所在单位), and a research system's author table (one row per author with
# the author's own unit) as a mention source of its outputs (docs/mapping.md).
HR_SOURCE = """  - name: hr
    path: hr.csv
    encoding: utf-8
    system: HR
    system_name: 人事管理系统
    department: 人事处
    table: 教职工
    entity_type: Person
    record_key: [工号]
    fields:
      工号: {property: staff_no}
      姓名: {property: name}
      出生日期: {property: birth_date}
      所在单位: {property: org_name}
"""
AUTHOR_TABLE_SOURCES = """  - name: authors
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
      context: {org_name: 作者单位}
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
"""
