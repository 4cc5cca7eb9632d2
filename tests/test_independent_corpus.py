"""The product on a university it was not built against (tests/corpus/build_corpus.py, written from
the documentation only): the real command line end to end on ~300 persons, scored by `campus-kg
evaluate` against the corpus's own truth.

Measured on 2026-12-01 with seed 3 (300 persons, 1,019 person records, 255 mentions): person pairwise
precision 1.0000, recall 0.9887; mention precision 1.0000, recall 0.9667; with the mentions counted
as records P 1.0000, R 0.9757; 11 review items (1.1 % of the person records). What is left is
genuinely ambiguous: namesakes in one college paid by the finance office under the name alone, and
co-authors written in pinyin who share a name with two of the university's people. Before record-to-
entity matching (the same day) recall was 0.7475 and mention recall 0.6238. The issue's goal is
P ≥ 0.998 / R ≥ 0.99; the floors below sit a little under what was measured so that a regression
fails, not so that the goal passes.
"""

from __future__ import annotations

import csv
import hashlib
import unicodedata
from pathlib import Path

import pytest
import yaml

from tests.corpus import cli
from tests.corpus.build_corpus import HARD_CASES, build

GOAL_PRECISION, GOAL_RECALL = 0.998, 0.99          # issue 12's targets
PRECISION_FLOOR, RECALL_FLOOR = 0.998, 0.98          # measured 1.0000 / 0.9887
MENTION_PRECISION_FLOOR, MENTION_RECALL_FLOOR = 0.98, 0.94  # measured 1.0000 / 0.9667


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("corpus"), persons=300, seed=3)


def _records(mapping_path: Path) -> dict[str, list[str]]:
    """source -> record keys, read straight from the files the mapping names (NFKC, trimmed, '|'-joined)."""
    mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    out = {}
    for s in mapping["sources"]:
        with (mapping_path.parent / s["path"]).open(encoding=s["encoding"], newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if s["format"] == "tsv" else ","))
        out[s["name"]] = ["|".join(unicodedata.normalize("NFKC", r[k].lstrip("\ufeff")).strip() for k in s["record_key"])
                          for r in rows]
    return out


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def test_builder_is_deterministic_for_a_seed(tmp_path):
    a, b, c = (build(tmp_path / n, persons=120, seed=s).parent for n, s in (("a", 5), ("b", 5), ("c", 6)))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_truth_covers_every_record_written(corpus):
    mapping = yaml.safe_load(corpus.read_text(encoding="utf-8"))
    entity_of = {s["name"]: s["entity_type"] for s in mapping["sources"]}
    with (corpus.parent / "truth_persons.csv").open(encoding="utf-8") as f:
        truth = {(r["source"], r["record_key"]) for r in csv.DictReader(f)}
    with (corpus.parent / "truth_mentions.csv").open(encoding="utf-8") as f:
        mentioned = {(r["source"], r["record_key"]) for r in csv.DictReader(f)}
    records = _records(corpus)
    assert len(records) >= 11 and len({s["system"] for s in mapping["sources"]}) >= 9
    for source, keys in records.items():
        assert keys and len(keys) == len(set(keys)), f"{source}: empty or duplicate keys"
        if entity_of[source] == "Person":
            assert {(source, k) for k in keys} == {t for t in truth if t[0] == source}, source
        elif source != "ky_outputs":  # the outputs table names no person; its authors are in their own table
            assert {(source, k) for k in keys} == {m for m in mentioned if m[0] == source}, source
    with (corpus.parent / "truth_mentions.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert any(r["entity_id"] == "EXTERNAL" for r in rows)
    assert any(", " in r["mention"] and r["mention"].split(",")[0].isupper() for r in rows)  # ZHANG, Wei


def test_corpus_has_the_hard_cases(corpus):
    import json

    stats = json.loads((corpus.parent / "corpus_stats.json").read_text(encoding="utf-8"))
    rare = {"international_typo"}  # a few per thousand persons: absent from a corpus this small
    missing = [c for c in HARD_CASES if c not in rare and not stats["hard_case_records"].get(c)]
    assert not missing, missing
    raw = [p.read_bytes() for p in corpus.parent.rglob("*.csv")]
    assert any(b.startswith(b"\xef\xbb\xbf") for b in raw)  # UTF-8 with a BOM
    hr = (corpus.parent / "hr/人事_教职工基本信息.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        hr.decode("utf-8")  # GBK
    assert hr.decode("gbk").startswith("工号,姓名")


def test_product_on_the_independent_corpus(corpus, tmp_path):
    workspace = tmp_path / "ws"
    ran = cli.campus_kg("run", "--mapping", str(corpus), "--workspace", str(workspace))
    assert ran.returncode == 0, ran.output[-3000:]
    counts = cli.ingest_counts(ran.output)
    assert set(counts) == set(_records(corpus)), counts
    for source, (read, loaded, quarantined) in counts.items():
        assert read == loaded + quarantined, source
        assert read == len(_records(corpus)[source]), source

    scored = cli.campus_kg("evaluate", "--workspace", str(workspace), "--truth", str(corpus.parent / "truth_persons.csv"),
                           "--mentions", str(corpus.parent / "truth_mentions.csv"))
    assert scored.returncode == 0, scored.output[-3000:]
    result = cli.evaluation(scored.output)
    person = result["entity_types"]["Person"]
    assert person["records"] == sum(len(k) for s, k in _records(corpus).items() if s not in
                                    ("ky_outputs", "ky_output_authors", "ky_foreign_outputs", "ky_projects"))
    assert person["precision"] >= PRECISION_FLOOR, f"{person} (goal P ≥ {GOAL_PRECISION})"
    assert person["recall"] >= RECALL_FLOOR, f"{person} (goal R ≥ {GOAL_RECALL})"
    assert set(result["hard_cases"]) == {"recall: same person, name written differently",
                                         "precision: same name, different people"}
    mentions = result["mentions"]
    assert mentions["precision"] >= MENTION_PRECISION_FLOOR, mentions
    assert mentions["recall"] >= MENTION_RECALL_FLOOR, mentions

    links = cli.campus_kg("export", "links", "--workspace", str(workspace), "--out", str(tmp_path / "links.csv"))
    assert links.returncode == 0, links.output[-2000:]
    with (tmp_path / "links.csv").open(encoding="utf-8") as f:
        assert sum(1 for r in csv.DictReader(f) if r["entity_type"] == "Person") == person["records"]
