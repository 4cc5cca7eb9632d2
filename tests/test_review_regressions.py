"""Regressions found by the hostile review of the hardening (an attacker and a careless operator
against the real CLI, pipeline and HTTP API). Each test failed before its fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from campus_kg import pipeline
from campus_kg.cli import app
from campus_kg.settings import Settings
from campus_kg.workspace import Workspace
from graph_api.store import open_store
from ingest.lakehouse import Lakehouse
from ingest.synthetic import generate
from tests.graph_dump import dump


def _run(mapping: Path, root: Path) -> tuple[Workspace, Settings]:
    ws = Workspace.at(root)
    settings = Settings(workspace=ws.root)
    console = Console(quiet=True)
    pipeline.run_ingest(mapping, ws, console)
    pipeline.run_resolve(ws, console)
    pipeline.run_build(settings, ws, console)
    return ws, settings


# ---- the analyst projection ----------------------------------------------------------------------
def test_a_source_keyed_on_an_id_number_column_it_does_not_map_shows_analysts_no_id_number(tmp_path):
    """An operator keys the card system on 身份证号 but maps only 卡号, 学工号 and 姓名 (not wanting
    ID numbers stored). The card records state no ID number, so the projection's same-record check
    missed it, and every SourceRecord's `id` and `record_key` was the raw ID number in the graph
    analysts query."""
    generated = generate(tmp_path / "sources", persons=30, seed=11)
    mapping = yaml.safe_load(generated.mapping_path.read_text(encoding="utf-8"))
    card = next(s for s in mapping["sources"] if s["name"] == "campus_card")
    card["record_key"] = ["身份证号"]
    del card["fields"]["身份证号"]
    generated.mapping_path.write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")

    ws, settings = _run(generated.mapping_path, tmp_path / "ws")
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        ids = {key for (key,) in lake.con.execute(
            "SELECT record_key FROM dwd_record WHERE source = 'campus_card'").fetchall()}
    ids = {v for v in ids if re.fullmatch(r"\d{17}[\dXx]|\d{15}", v)}  # the card's keys: ID numbers
    assert len(ids) >= 20

    pointer = ws.read_current_graph()

    def content(which: str) -> str:
        store = open_store(settings, backend="ladybug", ladybug_path=ws.root / pointer[which], read_only=True)
        try:
            return json.dumps(dump(store), ensure_ascii=False)
        finally:
            store.close()

    assert all(v in content("path") for v in ids)  # the full graph's record IDs are the card's keys
    analyst = content("analyst_path")
    leaked = sorted(v for v in ids if v in analyst or v.lower() in analyst or v.upper() in analyst)
    assert leaked == []


def test_analysts_cannot_tell_which_students_have_an_economic_hardship_grade(demo):
    """Only students with a hardship grade (家庭经济困难等级) have a statement of it; in the projection
    its value was `***`, but its presence named them: `MATCH (s:Statement)-[:DESCRIBES]->(p:Person)
    WHERE s.stated_property ENDS WITH 'hardship' RETURN p.name` listed every such student."""
    pointer = demo.workspace.read_current_graph()
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        (graded,) = lake.con.execute(
            "SELECT count(*) FROM dwd_statement WHERE property = 'economic_hardship'").fetchone()
    assert graded > 0

    def hardship_statements(which: str) -> int:
        store = open_store(demo.settings, backend="ladybug", ladybug_path=demo.workspace.root / pointer[which],
                           read_only=True)
        try:
            rows = store.query("MATCH (s:Statement) WHERE s.stated_property ENDS WITH 'hardship' "
                               "OPTIONAL MATCH (s)-[r]-() RETURN count(DISTINCT s) AS s, count(r) AS r")
        finally:
            store.close()
        return rows[0]["s"] + rows[0]["r"]

    assert hardship_statements("path") >= graded  # the full graph has them (stewards, lineage)
    assert hardship_statements("analyst_path") == 0


# ---- the access log of analysts' Cypher ---------------------------------------------------------
def test_the_access_log_keeps_what_a_padded_query_read(api):
    """The log kept the caller's text cut at 500 characters: a query starting with a 600-character
    comment was logged as that comment alone, whatever it read after it; long literals did the same
    for a query padded before and after its clauses."""
    analyst, auditor = api.headers("analyst"), api.headers("auditor")
    padded = {
        "comment": "/*" + " " * 600 + "*/ MATCH (p:Person) RETURN p.name AS name, p.birth_date AS born LIMIT 2",
        "literals": "MATCH (p:Person) WHERE '" + "a" * 3000 + "' <> '' WITH p, '" + "z" * 3000 + "' AS pad "
                    "RETURN p.name AS name, p.birth_date AS born LIMIT 2",
    }
    for how, query in padded.items():
        since = max((e["id"] for e in httpx.get(f"{api.url}/access-log", params={"actor": "test-analyst"},
                                                 headers=auditor).json()), default=0)
        answer = httpx.post(f"{api.url}/cypher", json={"query": query}, headers=analyst, timeout=60)
        assert answer.status_code == 200 and answer.json()["row_count"] == 2, answer.text
        entries = [e for e in httpx.get(f"{api.url}/access-log", params={"actor": "test-analyst"},
                                        headers=auditor).json() if e["id"] > since]
        assert len(entries) == 1, how
        (logged,) = entries[0]["fields"]
        assert "RETURN p.name AS name, p.birth_date AS born LIMIT 2" in logged, (how, logged[:200])
        assert len(logged) < 1000, how  # the padding is not what the log keeps


# ---- broken exports ------------------------------------------------------------------------------
def _json_readers(tmp_path: Path, records: object, **source: object) -> Path:
    """A one-source mapping: library readers as a JSON export (written as `records`)."""
    (tmp_path / "readers.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    mapping = {"version": 1, "sources": [{
        "name": "library_readers", "path": "readers.json", "format": "json", "encoding": "utf-8", "system": "TSG",
        "system_name": "图书管理系统", "department": "图书馆", "table": "读者信息", "entity_type": "Person",
        "record_key": ["读者证号"], "fields": {"读者证号": {"property": "student_no"}, "姓名": {"property": "name"}},
        **source}]}
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _records(workspace: Path) -> int:
    with Lakehouse(Workspace.at(workspace).lakehouse, read_only=True) as lake:
        return lake.con.execute("SELECT count(*) FROM dwd_record WHERE source = 'library_readers'").fetchone()[0]


@pytest.mark.parametrize("wrapped, records_path", [
    ("an object around the array", None),                       # {"total": n, "items": [...]}
    ("records_path renamed in the export", "data.items"),       # {"data": {"records": [...]}}
])
def test_a_json_export_without_its_records_array_deletes_nothing_even_where_deletions_are_allowed(
        tmp_path, wrapped, records_path):
    """A JSON export whose records are no longer where the mapping says (the export tool wrapped
    them in an object) read as zero records; on a source with `allow_deletions: true` (a yearly
    export, as docs/mapping.md advises) that deleted every record, and the ingest exited 0."""
    readers = [{"读者证号": f"2024{i:07d}", "姓名": f"读者{i}"} for i in range(30)]
    first = {"data": {"items": readers}} if records_path else readers
    extra = {"allow_deletions": True, **({"records_path": records_path} if records_path else {})}
    mapping = _json_readers(tmp_path, first, **extra)
    runner = CliRunner()
    ingest = ["ingest", "--mapping", str(mapping), "--workspace", str(tmp_path / "ws")]
    loaded = runner.invoke(app, ingest, catch_exceptions=False)
    assert loaded.exit_code == 0, loaded.output
    assert _records(tmp_path / "ws") == 30

    broken = {"data": {"records": readers}} if records_path else {"total": len(readers), "items": readers}
    _json_readers(tmp_path, broken, **extra)
    again = runner.invoke(app, ingest, catch_exceptions=False)
    assert _records(tmp_path / "ws") == 30, wrapped
    assert again.exit_code != 0
    assert "no array of records" in " ".join(again.output.split()), again.output


def test_a_header_line_repeated_inside_an_export_is_quarantined_not_loaded_as_a_record(tmp_path):
    """Two exports appended into one file: the second header loaded as a person keyed `读者证号`
    named `姓名` (exit 0), who then went on into resolution and the graph."""
    lines = ["读者证号,姓名"] + [f"2024{i:07d},读者{i}" for i in range(10)]
    (tmp_path / "readers.csv").write_text("\r\n".join([*lines, *lines, ""]), encoding="utf-8")
    mapping = yaml.safe_load(_json_readers(tmp_path, []).read_text(encoding="utf-8"))
    mapping["sources"][0].update(path="readers.csv", format="csv")
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", "--mapping", str(tmp_path / "mapping.yaml"),
                                      "--workspace", str(tmp_path / "ws")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Lakehouse(Workspace.at(tmp_path / "ws").lakehouse, read_only=True) as lake:
        keys = {k for (k,) in lake.con.execute("SELECT record_key FROM dwd_record").fetchall()}
        reasons = [r for (r,) in lake.con.execute("SELECT reason FROM quarantine WHERE row_no = 12").fetchall()]
    assert keys == {f"2024{i:07d}" for i in range(10)}
    assert reasons and "header line again" in reasons[0]


def test_a_sql_source_cannot_read_a_database_file_outside_the_mappings_folder(tmp_path):
    """`format: sql` with `url: sqlite:////…/ws/state.sqlite` read any SQLite file on the server (the
    workspace's own API tokens and access log) although file sources may not leave the folder."""
    import sqlite3

    folder, elsewhere = tmp_path / "mapping", tmp_path / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    for where in (folder, elsewhere):
        with sqlite3.connect(where / "readers.sqlite") as db:
            db.execute("CREATE TABLE readers (读者证号 TEXT, 姓名 TEXT)")
            db.executemany("INSERT INTO readers VALUES (?, ?)", [(f"2024{i:07d}", f"读者{i}") for i in range(5)])
        db.close()

    def ingest(where: Path, workspace: str):
        mapping = {"version": 1, "sources": [{
            "name": "library_readers", "format": "sql", "url": f"sqlite:///{where / 'readers.sqlite'}",
            "sql_table": "readers", "system": "TSG", "system_name": "图书管理系统", "department": "图书馆",
            "table": "读者信息", "entity_type": "Person", "record_key": ["读者证号"],
            "fields": {"读者证号": {"property": "student_no"}, "姓名": {"property": "name"}}}]}
        (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
        result = CliRunner().invoke(app, ["ingest", "--mapping", str(folder / "mapping.yaml"),
                                          "--workspace", str(tmp_path / workspace)], catch_exceptions=False)
        return result, _records(tmp_path / workspace)

    inside, loaded = ingest(folder, "ws-inside")
    assert inside.exit_code == 0 and loaded == 5, inside.output
    outside, loaded = ingest(elsewhere, "ws-outside")
    assert outside.exit_code != 0 and loaded == 0
    assert "outside the mapping's folder" in " ".join(outside.output.split()), outside.output


def test_a_person_record_shows_analysts_no_trace_of_a_value_masked_whole(api):
    """The personal-data-centre view had the same leak as the projection: an analyst saw
    `economic_hardship: ***` exactly for the students who have a grade."""
    with Lakehouse(api.workspace.lakehouse, read_only=True) as lake:
        graded = lake.con.execute("""SELECT master_id FROM res_attribute
            WHERE entity_type = 'Person' AND property = 'economic_hardship' ORDER BY 1 LIMIT 1""").fetchall()
    assert graded, "the demo university should have students with a hardship grade"
    person = graded[0][0]

    def properties(role: str) -> set[str]:
        r = httpx.get(f"{api.url}/persons/{person}", headers=api.headers(role))
        assert r.status_code == 200, r.text
        return {a["property"] for c in r.json()["categories"] for a in c["attributes"]}

    assert "economic_hardship" in properties("steward")
    seen_by_analyst = properties("analyst")
    assert "economic_hardship" not in seen_by_analyst and "ethnic_group" not in seen_by_analyst
    assert "name" in seen_by_analyst and "id_number" in seen_by_analyst  # partly masked values stay


def test_restore_refuses_a_manifest_naming_files_outside_the_archive(tmp_path):
    """A tampered backup whose manifest names `../../x` read outside the unpacked archive and wrote
    outside the workspace."""
    import hashlib
    import tarfile

    from campus_kg.backup import MANIFEST, RestoreError, restore

    victim = tmp_path / "victim.txt"
    victim.write_text("outside")
    staging = tmp_path / "staging"
    staging.mkdir()
    name = "../" * 6 + str(victim).lstrip("/")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    (staging / MANIFEST).write_text(json.dumps({"files": {name: digest}}), encoding="utf-8")
    archive = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / MANIFEST, arcname=MANIFEST)
    workspace = Workspace.at(tmp_path / "ws")
    with pytest.raises(RestoreError, match="outside the archive"):
        restore(archive, workspace)
    assert not any(workspace.root.rglob("victim.txt"))
