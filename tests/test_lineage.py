"""Lineage: every master value traces to a source row that really holds it; values as of a past date."""

import csv
import datetime as dt
import random

from rich.console import Console

from campus_kg import pipeline
from graph_api.lineage import attribute_lineage
from graph_api.served_graph import ServedGraph
from ingest.standardise import standardise_name
from ingest.lakehouse import Lakehouse, ods_table, quote
from tests.conftest import run_pipeline
from tests.samples import persons_without_id_number


def test_fifty_master_values_trace_to_raw_rows_that_hold_them(demo):
    graph = ServedGraph(demo.settings, demo.workspace)
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        values = lake.con.execute("""SELECT master_id, property, value FROM res_attribute
            WHERE source_record_id IS NOT NULL ORDER BY hash(master_id || property) LIMIT 50""").fetchall()
        assert len(values) == 50
        for master_id, prop, value in values:
            answer = attribute_lineage(graph, master_id, prop)
            assert answer["value"] == value, (master_id, prop)
            chosen = [s for s in answer["statements"] if s["chosen"]]
            assert len(chosen) >= 1 and chosen[0]["system"] and chosen[0]["run_id"]
            record = chosen[0]["record_id"]
            source, row_hash = lake.con.execute("SELECT source, row_hash FROM dwd_record WHERE record_id = ?",
                                                [record]).fetchall()[0]
            raw = lake.con.execute(f"SELECT * FROM {ods_table(source)} WHERE _row_hash = ?", [row_hash]).fetchall()
            assert raw, record
            assert chosen[0]["written_value"] in raw[0], (record, chosen[0]["written_value"], raw[0])
    graph.close()


def test_as_of_a_past_date_returns_the_value_held_then(tmp_path):
    demo = run_pipeline(tmp_path, persons=200, seed=3)
    before = dt.datetime.now()
    hr = next(demo.generated.mapping_path.parent.rglob("人事_*.csv"))
    rows = list(csv.reader(hr.read_text(encoding="gbk").splitlines()))
    header, target = rows[0], rows[1 + random.Random(1).randrange(len(rows) - 1)]
    name_col = header.index("姓名")
    old_name, target[name_col] = target[name_col], "欧阳新名"
    with open(hr, "w", encoding="gbk", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    quiet = Console(quiet=True)
    pipeline.run_ingest(demo.generated.mapping_path, demo.workspace, quiet)
    pipeline.run_resolve(demo.workspace, quiet)
    pipeline.run_build(demo.settings, demo.workspace, quiet)
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        master = lake.con.execute("SELECT master_id FROM res_link WHERE member_id = ?",
                                  [f"hr_staff:{target[header.index('工号')]}"]).fetchall()[0][0]
        assert lake.con.execute(f"SELECT count(*) FROM {ods_table('hr_staff')} WHERE {quote('姓名')} = ?",
                                [old_name]).fetchall()[0][0] >= 1  # the raw layer kept the old version
    graph = ServedGraph(demo.settings, demo.workspace)
    then = attribute_lineage(graph, master, "name", as_of=before)
    now = attribute_lineage(graph, master, "name", as_of=dt.datetime.now())
    graph.close()
    assert then["value_as_of"] == standardise_name(old_name)
    assert now["value"] == now["value_as_of"] == "欧阳新名"
    assert then["value_as_of"] != "欧阳新名"
    retired = [s for s in then["statements"] if s["retired_at"] is not None]
    assert retired and all(s["value"] != "欧阳新名" for s in retired)


def test_entity_history_answers_for_merged_ids(demo, tmp_path):
    import shutil

    from campus_kg.state import StateStore
    from campus_kg.workspace import Workspace
    from graph_api.lineage import entity_history

    shutil.copytree(demo.workspace.root, tmp_path / "ws")
    ws = Workspace.at(tmp_path / "ws")
    settings = demo.settings.model_copy(update={"workspace": ws.root})
    with Lakehouse(ws.lakehouse, read_only=True) as lake:
        (a, ma), (b, mb) = persons_without_id_number(lake)
    StateStore(settings.state_database_url(), settings.token_secret.get_secret_value()).add_decision(
        "Person", a, b, "same", "steward-1", "one person, two HR records")
    quiet = Console(quiet=True)
    pipeline.run_resolve(ws, quiet, settings)
    pipeline.run_build(settings, ws, quiet)
    graph = ServedGraph(settings, ws)
    histories = {m: entity_history(graph, m) for m in (ma, mb)}
    graph.close()
    merged = next(h for h in histories.values() if h["status"] == "merged")
    survivor = histories[merged["merged_into"]]
    assert survivor["status"] == "active" and [r["former_id"] for r in survivor["absorbed"]] == [merged["id"]]


def test_lineage_command_masks_sensitive_values_and_logs_the_read(demo):
    import re

    from typer.testing import CliRunner

    from campus_kg.cli import app
    from campus_kg.state import StateStore

    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        master, id_number = lake.con.execute("""SELECT master_id, value FROM res_attribute
            WHERE property = 'id_number' ORDER BY master_id LIMIT 1""").fetchall()[0]
    result = CliRunner().invoke(app, ["lineage", "--workspace", str(demo.workspace.root), master, "id_number"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert id_number not in result.output and f"{id_number[0]}{'*' * 17}" in result.output
    assert re.search(r"ID status\s+active", result.output)
    state = StateStore(demo.settings.state_database_url(), demo.settings.token_secret.get_secret_value())
    assert any(e["person_id"] == master and e["endpoint"] == "cli lineage id_number"
               for e in state.access_entries(person_id=master))
