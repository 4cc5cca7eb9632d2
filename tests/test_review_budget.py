"""The review budget: the queue holds the items whose decisions teach the model most, at most
`review_budget` × the Person records (never cut below MIN_REVIEW_QUEUE); the rest wait, unlinked,
in res_review_deferred — nothing a steward may need is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from ingest.lakehouse import Lakehouse
from resolution import run
from resolution.person_linkage import LinkageOptions
from tests.test_entity_match import _university


def _item(i: int, p: float | None, reason: str = "uncertain: between the review and the match threshold") -> dict:
    return {"item_id": f"i{i:03d}", "entity_type": "Person", "record_a": f"a{i}", "record_b": f"b{i}",
            "match_probability": p, "match_weight": None, "reason": reason, "evidence": "{}"}


def test_the_queue_keeps_the_most_informative_items_and_defers_the_rest(monkeypatch):
    monkeypatch.setattr(run, "MIN_REVIEW_QUEUE", 3)
    items = [_item(i, p) for i, p in enumerate([0.95, 0.5, 0.9, 0.55, 0.99, 0.7])]
    items.append(_item(99, 0.999, "conflict: would join two different ID numbers or passports"))
    queued, deferred = run._within_budget(items, budget=0.01, person_records=400)  # 4 items
    # a conflict and p = 0.5 both score 1 bit (ties by item ID), then p = 0.55, 0.7
    assert [i["item_id"] for i in queued] == ["i001", "i099", "i003", "i005"]
    assert {i["item_id"] for i in deferred} == {"i000", "i002", "i004"}
    assert all(q["priority"] >= d["priority"] for q in queued for d in deferred)


def test_small_data_is_never_cut_below_the_floor():
    items = [_item(i, 0.6) for i in range(run.MIN_REVIEW_QUEUE)]
    queued, deferred = run._within_budget(items, budget=0.0, person_records=10)
    assert len(queued) == run.MIN_REVIEW_QUEUE and deferred == []


def test_a_duplicate_item_is_queued_once():
    queued, deferred = run._within_budget([_item(1, 0.6), _item(1, 0.6)], budget=1.0, person_records=10)
    assert len(queued) == 1 and deferred == []


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("budget")
    src = tmp / "src"
    src.mkdir()
    _university(src)
    result = CliRunner().invoke(app, ["ingest", "--mapping", str(src / "mapping.yaml"), "--workspace", str(tmp / "ws")])
    assert result.exit_code == 0, result.output
    return tmp / "ws"


def test_a_resolve_stores_the_deferred_items_beside_the_queue(ingested, monkeypatch):
    monkeypatch.setattr(run, "MIN_REVIEW_QUEUE", 2)
    with Lakehouse(ingested / "lakehouse.duckdb") as lake:
        everything = run.resolve(lake, LinkageOptions(review_budget=1.0))
        total = everything.review_items
        assert total > 2 and everything.review_deferred == 0
        budgeted = run.resolve(lake, LinkageOptions(review_budget=0.0))
        assert (budgeted.review_items, budgeted.review_deferred) == (2, total - 2)
        queue = lake.con.execute("SELECT priority FROM res_review ORDER BY priority").fetchall()
        waiting = lake.con.execute("SELECT priority FROM res_review_deferred").fetchall()
        assert len(queue) == 2 and len(waiting) == total - 2
        assert min(q for q, in queue) >= max(w for w, in waiting)
        assert any("review budget" in note for note in budgeted.notes)
