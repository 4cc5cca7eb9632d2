"""The review queue puts first the items whose decision teaches the model most (resolution/
review_priority.py), keeps the priority in res_review (added to older workspaces' tables), serves
the queue in that order, and steward decisions retrain the model's m once there are enough."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from campus_kg.settings import Settings
from campus_kg.state import StateStore
from ingest.lakehouse import Lakehouse
from resolution.person_model import MIN_LABELS_FOR_M
from resolution.review_priority import CONFLICT_PRIORITY, MENTION_WEIGHT, binary_entropy, review_priority
from resolution.run import _store_review, ensure_review_table


def _pair(p: float, reason: str = "uncertain: between the review and the match threshold") -> dict:
    return {"item_id": f"i{p}", "entity_type": "Person", "record_a": "a:1", "record_b": "b:1",
            "match_probability": p, "match_weight": None, "reason": reason, "evidence": "{}"}


def _mention(*probabilities: float) -> dict:
    evidence = {"candidates": [{"master_id": f"P{i}", "probability": q} for i, q in enumerate(probabilities)]}
    return {**_pair(max(probabilities)), "reason": "ambiguous mention: several people of this name fit",
            "record_b": "mention:AUTHOR_OF:1:张伟", "evidence": json.dumps(evidence)}


def test_the_pair_the_model_is_least_sure_of_comes_first():
    ranked = [review_priority(_pair(p)) for p in (0.5, 0.6, 0.75, 0.9, 0.99)]
    assert ranked == sorted(ranked, reverse=True) and len(set(ranked)) == 5
    assert review_priority(_pair(0.5)) == pytest.approx(1.0)
    assert review_priority(_pair(0.8)) == pytest.approx(review_priority(_pair(0.2)))  # a 'no' teaches as much
    assert review_priority(_pair(0.9)) == pytest.approx(0.469, abs=1e-3)


def test_a_conflict_ranks_with_the_most_uncertain_pairs():
    """The model wanted the link (p >= the match threshold), a constraint refused it: one is wrong."""
    conflict = review_priority(_pair(0.999, "conflict: would join two different ID numbers or passports"))
    assert conflict == CONFLICT_PRIORITY >= review_priority(_pair(0.5))
    assert conflict > review_priority(_pair(0.999))


def test_a_mention_ranks_by_how_close_its_two_best_candidates_are():
    tie, apart = review_priority(_mention(0.45, 0.45, 0.05)), review_priority(_mention(0.7, 0.2))
    assert tie == pytest.approx(MENTION_WEIGHT) and 0 < apart < tie
    assert tie < review_priority(_pair(0.5))  # it labels no record pair: the model learns nothing from it
    scored = {**_mention(0.5), "evidence": json.dumps({"candidates": [{"master_id": "P1", "score": 5},
                                                                      {"master_id": "P2", "score": 5}]})}
    assert review_priority(scored) == pytest.approx(MENTION_WEIGHT)  # items written with integer scores
    assert binary_entropy(None) == binary_entropy(1.0) == 0.0


def test_an_older_workspace_gains_the_priority_column(tmp_path):
    con = duckdb.connect(str(tmp_path / "lake.duckdb"))
    con.execute("""CREATE TABLE res_review (item_id VARCHAR PRIMARY KEY, entity_type VARCHAR, record_a VARCHAR,
        record_b VARCHAR, match_probability DOUBLE, match_weight DOUBLE, reason VARCHAR, evidence JSON,
        run_id VARCHAR)""")
    con.execute("INSERT INTO res_review VALUES ('old', 'Person', 'a:1', 'b:2', 0.7, 1.2, 'uncertain', '{}', 'r0')")
    ensure_review_table(con)
    ensure_review_table(con)  # twice: nothing to add the second time
    assert con.execute("SELECT priority FROM res_review").fetchall() == [(None,)]
    items = [_pair(0.55), _pair(0.97), _pair(0.999, "conflict: a steward's 'not the same'"), _mention(0.4, 0.35)]
    _store_review(con, items, "r1")
    stored = dict(con.execute("SELECT item_id, priority FROM res_review").fetchall())
    assert stored == pytest.approx({i["item_id"]: review_priority(i) for i in items})


def test_the_api_serves_the_queue_most_to_learn_first(api):
    stewards = api.headers("steward")
    items = []
    for page in (1, 2, 3):
        answer = httpx.get(f"{api.url}/review/queue", params={"status": "all", "page_size": 500, "page": page},
                           headers=stewards, timeout=60)
        assert answer.status_code == 200, answer.text
        items += answer.json()["items"]
    assert len(items) >= 2, "the demo leaves items for review"
    with Lakehouse(api.workspace.lakehouse, read_only=True) as lake:
        stored = dict(lake.con.execute("SELECT item_id, priority FROM res_review").fetchall())
    assert {i["item_id"]: i["priority"] for i in items} == pytest.approx(stored)  # every item, with its priority
    order = [(-i["priority"], i["item_id"]) for i in items]
    assert order == sorted(order)  # highest first, ties by item ID


# ---- steward decisions retrain the model ------------------------------------------------------------

PEOPLE = ["王芳", "刘强", "陈杰", "杨秀英", "黄勇", "赵丽", "周军", "吴霞", "徐明", "孙娟", "马超", "朱琳", "胡斌",
          "郭静", "何磊", "高燕", "林涛", "罗欣", "郑浩", "梁雪", "宋佳", "唐伟", "韩梅", "冯刚"]
MAPPING = """version: 1
university: 测试大学
sources:
""" + "".join(f"""  - name: {name}
    path: {name}.csv
    format: csv
    encoding: utf-8
    system: {name.upper()}
    system_name: {name}
    department: 人事处
    table: {name}
    entity_type: Person
    record_key: [key]
    fields:
      name: {{property: name}}
      birth_date: {{property: birth_date}}
      org_name: {{property: org_name}}
""" for name in ("hr", "library"))


def _model_m(ws: Path) -> dict[tuple[str, str], float]:
    spec = json.loads((ws / "model" / "person.json").read_text(encoding="utf-8"))
    return {(c["output_column_name"], lv.get("label_for_charts")): lv["m_probability"]
            for c in spec["comparisons"] for lv in c["comparison_levels"] if not lv.get("is_null_level")}


def test_twenty_steward_decisions_retrain_m(tmp_path):
    """No identifiers: only the model links. Below MIN_LABELS_FOR_M 'same' decisions m is left to
    EM; at MIN_LABELS_FOR_M the saved model's m comes from the stewards' labels."""
    src, ws = tmp_path / "src", tmp_path / "ws"
    src.mkdir()
    for name, college in (("hr", "数学学院"), ("library", "数学与统计学院")):
        with open(src / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["key", "name", "birth_date", "org_name"])
            writer.writerows([f"K{i:03d}", n, f"19{70 + i}-0{1 + i % 9}-1{i % 9}", college]
                             for i, n in enumerate(PEOPLE))
    (src / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--mapping", str(src / "mapping.yaml"), "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    before = _model_m(ws)
    settings = Settings(workspace=ws)
    state = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value())
    assert MIN_LABELS_FOR_M == 20

    def decide_and_resolve(pairs: range) -> dict[tuple[str, str], float]:
        for i in pairs:
            state.add_decision("Person", f"hr:K{i:03d}", f"library:K{i:03d}", "same", "test-steward", "checked")
        resolved = runner.invoke(app, ["resolve", "--workspace", str(ws)])
        assert resolved.exit_code == 0, resolved.output
        return _model_m(ws)

    assert decide_and_resolve(range(MIN_LABELS_FOR_M - 1)) == before  # training is deterministic
    after = decide_and_resolve(range(MIN_LABELS_FOR_M - 1, MIN_LABELS_FOR_M))
    assert after.keys() == before.keys()
    changed = {k for k in before if abs(after[k] - before[k]) > 1e-3}
    # every labelled pair has the same name and birth date: m of those levels rises to (nearly) 1
    assert {("name", "Exact match on name"), ("dob", "same day")} <= changed, (before, after)
    assert after[("name", "Exact match on name")] > before[("name", "Exact match on name")]
