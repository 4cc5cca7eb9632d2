"""`campus-kg evaluate`: the calibration of match probabilities, mentions counted as records, --json.

A tiny university (two person systems and a paper with an author list) goes through the real
`campus-kg run`; its truth is written by hand beside it. Calibration is checked on score tables whose
probabilities are chosen here (written by SQL over what the run wrote), so that every decile, the
Brier score and the ECE can be worked out by hand. The test on the demo university reads the score
tables resolution itself writes (`res_pair_score`, `res_entity_score`)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campus_kg.cli import app
from ingest.lakehouse import Lakehouse
from resolution import evaluate as ev
from tests.corpus import cli

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

# staff_no, name, birth date: hr and library both hold these people, joined on staff number.
PEOPLE = {"A": ("10001", "王建国", "1971-03-04"), "B": ("10002", "李秀梅", "1980-11-21"),
          "C": ("10003", "赵志强", "1985-06-30"), "E": ("10004", "孙丽娟", "1990-01-15")}
# Others, so that the model has a population to learn from.
CROWD = [("1%04d" % (100 + i), name, f"19{70 + i}-0{1 + i % 9}-1{i % 10}") for i, name in enumerate(
    ["周文博", "吴海燕", "郑国栋", "冯雪", "陈立新", "褚明", "卫东方", "蒋红霞", "沈一鸣", "韩冬梅"])]


def _write(path: Path, header: list[str], rows: list) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _person_source(name: str) -> str:
    return f"""  - name: {name}
    path: {name}.csv
    format: csv
    encoding: utf-8
    system: {name.upper()}
    system_name: {name}
    department: 人事处
    table: {name}
    entity_type: Person
    record_key: [id]
    fields:
      staff_no: {{property: staff_no}}
      name: {{property: name}}
      birth_date: {{property: birth_date}}
"""


PAPERS = """  - name: papers
    path: papers.csv
    format: csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科学技术处
    table: papers
    entity_type: Publication
    record_key: [id]
    fields:
      title: {property: title}
    relationships:
      - {type: AUTHOR_OF, column: authors, target: Person, match_on: author_name, direction: in, split: authors}
  - name: projects
    path: projects.csv
    format: csv
    encoding: utf-8
    system: KYXM
    system_name: 科研项目系统
    department: 科学技术处
    table: projects
    entity_type: Project
    record_key: [id]
    fields:
      title: {property: title}
    relationships:
      - {type: LEADS, column: leader_no, target: Person, match_on: staff_no, direction: in}
  - name: theses
    path: theses.csv
    format: csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科学技术处
    table: theses
    entity_type: Publication
    record_key: [id]
    fields:
      title: {property: title}
  - name: thesis_authors
    path: thesis_authors.csv
    format: csv
    encoding: utf-8
    system: KY
    system_name: 科研管理系统
    department: 科学技术处
    table: thesis_authors
    record_key: [thesis, rank]
    mentions:
      parent: {source: theses, key: [thesis]}
      relationship: AUTHOR_OF
      name: name
      position: rank
      context: {staff_no: staff_no}
"""
# The mentions of the tiny university, each linked by an identifier (whatever name linking decides):
# the project's leader, by staff number; the paper's second author, from outside; the thesis's author,
# a row of an author table (a mention source: the mention is on the thesis, stated by the row).
MENTIONS = [("projects", "J1", 1, "10001", "A"), ("papers", "K1", 2, "John Smith", "EXTERNAL"),
            ("thesis_authors", "T1|1", 1, "李秀梅", "B")]
MENTION_HEADER = ["source", "record_key", "position", "mention", "entity_id"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny university after `campus-kg run`: src/ (exports, truth.csv, mentions.csv) and ws/."""
    root = tmp_path_factory.mktemp("tiny")
    src = root / "src"
    src.mkdir()
    crowd = [(f"X{i}", *c) for i, c in enumerate(CROWD)]
    hr = [(f"H{k}", *PEOPLE[k]) for k in "ABCE"] + crowd
    # D: a name-only library record of a person hr does not hold.
    library = [(f"L{k}", *PEOPLE[k]) for k in "ABE"] + [("LD", "", "钱多多", "")]
    _write(src / "hr.csv", ["id", "staff_no", "name", "birth_date"], hr)
    _write(src / "library.csv", ["id", "staff_no", "name", "birth_date"], library)
    # The first author is A; the second, Smith, is from another university. A leads the project.
    _write(src / "papers.csv", ["id", "title", "authors"], [("K1", "图谱与治理", "王建国; John Smith")])
    _write(src / "projects.csv", ["id", "title", "leader_no"], [("J1", "数据治理", PEOPLE["A"][0])])
    _write(src / "theses.csv", ["id", "title"], [("T1", "高校主数据")])
    _write(src / "thesis_authors.csv", ["thesis", "rank", "name", "staff_no"], [("T1", 1, "李秀梅", PEOPLE["B"][0])])
    (src / "mapping.yaml").write_text("version: 1\nuniversity: 测试大学\nsources:\n" + _person_source("hr")
                                      + _person_source("library") + PAPERS, encoding="utf-8")
    truth = [("hr", f"H{k}", "Person", k) for k in "ABCE"] + [("hr", f"X{i}", "Person", f"X{i}") for i in range(len(crowd))]
    truth += [("library", f"L{k}", "Person", k) for k in "ABE"] + [("library", "LD", "Person", "D")]
    _write(src / "truth.csv", ["source", "record_key", "entity_type", "entity_id"], truth)
    _write(src / "mentions.csv", MENTION_HEADER, MENTIONS)
    ran = runner.invoke(app, ["run", "--mapping", str(src / "mapping.yaml"), "--workspace", str(root / "ws")])
    assert ran.exit_code == 0, ran.output
    return root


@pytest.fixture
def copy(tiny, tmp_path) -> Path:
    """A copy of the tiny university that a test may change."""
    shutil.copytree(tiny, tmp_path / "t")
    return tmp_path / "t"


def _evaluate(root: Path, *extra: str, mentions: Path | None = None) -> dict:
    args = ["evaluate", "--workspace", str(root / "ws"), "--truth", str(root / "src" / "truth.csv"), "--json"]
    args += ["--mentions", str(mentions or root / "src" / "mentions.csv"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stdout is the document and nothing else


def _record_ids(root: Path) -> dict[str, str]:
    with Lakehouse(root / "ws" / "lakehouse.duckdb", read_only=True) as lake:
        return dict(lake.con.execute("SELECT source || '/' || record_key, record_id FROM dwd_record").fetchall())


def _master(root: Path, record_id: str) -> str:
    with Lakehouse(root / "ws" / "lakehouse.duckdb", read_only=True) as lake:
        return lake.con.execute("SELECT master_id FROM res_link WHERE member_id = ?", [record_id]).fetchall()[0][0]


# Pairs of (hr/library record, record, probability); "nobody/1" is in no truth file: not labelled.
PAIRS = [("hr/HA", "library/LA", 0.95), ("hr/HB", "library/LB", 0.99), ("hr/HA", "hr/HB", 0.05),
         ("hr/HC", "library/LD", 0.91), ("hr/HC", "library/LA", 0.5), ("hr/HE", "library/LE", 1.0),
         ("library/LB", "nobody/1", 0.7)]
TRUE_ENTITY = {"hr/HA": "A", "library/LA": "A", "hr/HB": "B", "library/LB": "B", "hr/HC": "C", "library/LD": "D",
               "hr/HE": "E", "library/LE": "E"}


def _write_scores(root: Path, pairs: list, entities: list) -> None:
    """The score tables as the lead's resolve step writes them (same columns), with chosen numbers."""
    with Lakehouse(root / "ws" / "lakehouse.duckdb") as lake:
        con = lake.con
        con.execute("CREATE OR REPLACE TABLE res_pair_score (record_a VARCHAR, record_b VARCHAR, "
                    "match_probability DOUBLE)")
        if pairs:
            con.executemany("INSERT INTO res_pair_score VALUES (?, ?, ?)", pairs)
        con.execute("CREATE OR REPLACE TABLE res_entity_score (item_id VARCHAR, master_id VARCHAR, "
                    "match_probability DOUBLE, linked BOOLEAN)")
        if entities:
            con.executemany("INSERT INTO res_entity_score VALUES (?, ?, ?, ?)", entities)


def test_pair_calibration_by_hand(copy):
    ids = _record_ids(copy)
    _write_scores(copy, [(ids.get(a, a), ids.get(b, b), p) for a, b, p in PAIRS], [])
    cal = _evaluate(copy)["calibration"]["pairs"]
    assert cal["available"] and cal["scored"] == 7 and cal["labelled"] == 6
    labelled = [(p, int(TRUE_ENTITY[a] == TRUE_ENTITY[b])) for a, b, p in PAIRS if b in TRUE_ENTITY]
    bins = {b["lower"]: b for b in cal["bins"]}
    assert [b["lower"] for b in cal["bins"]] == [i / 10 for i in range(10)] and cal["bins"][-1]["upper"] == 1.0
    assert sum(b["count"] for b in cal["bins"]) == cal["labelled"]
    # worked by hand: 0.05 (different people), 0.5 (different), and in [0.9, 1.0] 0.95, 0.99, 1.0 (same) and
    # 0.91 (C and the name-only D: different); 1.0 falls in the last decile, not past it
    assert (bins[0.0]["count"], bins[0.0]["observed"]) == (1, 0.0)
    assert (bins[0.5]["count"], bins[0.5]["observed"]) == (1, 0.0)
    assert bins[0.9]["count"] == 4 and bins[0.9]["observed"] == pytest.approx(0.75)
    assert bins[0.9]["mean_predicted"] == pytest.approx((0.95 + 0.99 + 0.91 + 1.0) / 4)
    assert all(bins[k]["count"] == 0 and bins[k]["observed"] is None for k in (0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8))
    assert cal["brier"] == pytest.approx(sum((p - y) ** 2 for p, y in labelled) / 6)  # 0.1805
    assert cal["brier"] == pytest.approx(0.180533, abs=1e-6)
    assert cal["ece"] == pytest.approx((0.05 + 0.5 + 4 * abs(3.85 / 4 - 0.75)) / 6)  # 0.2333


def test_entity_calibration_by_hand(copy):
    ids = _record_ids(copy)
    master_a, master_b, master_c = (_master(copy, ids[k]) for k in ("hr/HA", "hr/HB", "hr/HC"))
    master_d = _master(copy, ids["library/LD"])
    assert len({master_a, master_b, master_c, master_d}) == 4  # the run kept the four people apart
    paper, thesis = ids["papers/K1"], ids["theses/T1"]
    entities = [
        (ids["library/LA"], master_a, 0.97, True),   # A's own master: A without the item itself → same
        (ids["library/LD"], master_c, 0.6, False),   # D against C's master → different
        (ids["library/LD"], master_d, 0.8, True),    # D's master holds only D: no other record to say → not labelled
        (f"mention:{paper}:AUTHOR_OF:1", master_a, 0.9, True),   # 王建国 is A → same
        (f"mention:{paper}:AUTHOR_OF:2", master_b, 0.3, False),  # Smith is EXTERNAL → never the candidate
        (f"mention:{thesis}:AUTHOR_OF:1", master_b, 0.95, True),  # the author table's row names B → same
        ("mention:nowhere:AUTHOR_OF:1", master_a, 0.4, False),   # not in the mentions file → not labelled
    ]
    _write_scores(copy, [], entities)
    with_author = copy / "src" / "with_author.csv"
    _write(with_author, MENTION_HEADER, MENTIONS + [("papers", "K1", 1, "王建国", "A")])
    cal = _evaluate(copy, mentions=with_author)["calibration"]["entities"]
    assert (cal["scored"], cal["labelled"]) == (7, 5)
    bins = {b["lower"]: (b["count"], b["observed"]) for b in cal["bins"]}
    assert bins[0.9] == (3, 1.0) and bins[0.6] == (1, 0.0) and bins[0.3] == (1, 0.0) and bins[0.8] == (0, None)
    assert cal["brier"] == pytest.approx((0.03 ** 2 + 0.6 ** 2 + 0.1 ** 2 + 0.3 ** 2 + 0.05 ** 2) / 5)
    # without the mentions file only the two record items are labelled
    plain = runner.invoke(app, ["evaluate", "--workspace", str(copy / "ws"), "--truth", str(copy / "src" / "truth.csv"),
                                "--json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["calibration"]["entities"]["labelled"] == 2


def test_json_has_every_figure_the_tables_show(copy):
    ids = _record_ids(copy)
    _write_scores(copy, [(ids.get(a, a), ids.get(b, b), p) for a, b, p in PAIRS],
                  [(ids["library/LD"], _master(copy, ids["hr/HC"]), 0.6, False)])
    doc = _evaluate(copy)
    assert set(doc) >= {"entity_types", "hard_cases", "mentions", "mentions_as_records", "calibration", "review"}
    # the tables as a terminal shows them: the real command in a wide terminal
    shown = cli.campus_kg("evaluate", "--workspace", str(copy / "ws"), "--truth", str(copy / "src" / "truth.csv"),
                          "--mentions", str(copy / "src" / "mentions.csv"))
    assert shown.returncode == 0, shown.output
    text = shown.output
    person = doc["entity_types"]["Person"]
    row = re.search(r"│ Person\s*│\s*(\d+)\s*│" + r"\s*([0-9.]+)\s*│" * 6, text)
    assert int(row[1]) == person["records"] == len(PEOPLE) + len(CROWD) + 4
    assert [float(row[i]) for i in range(2, 8)] == [round(v, 4) for v in (
        *(person["pairwise"][k] for k in ("precision", "recall", "f1")),
        *(person["bcubed"][k] for k in ("precision", "recall", "f1")))]
    deciles = re.findall(r"│\s*\[(0\.\d), \d\.\d[)\]]\s*│\s*(\d+)\s*│\s*([0-9.—]+)\s*│\s*([0-9.—]+)\s*│", text)
    assert len(deciles) == 20  # both tables
    for (lower, count, mean, observed), b in zip(deciles, doc["calibration"]["pairs"]["bins"] +
                                                 doc["calibration"]["entities"]["bins"]):
        assert (float(lower), int(count)) == (b["lower"], b["count"])
        assert observed == ("—" if b["observed"] is None else f"{b['observed']:.4f}")
    pairs = doc["calibration"]["pairs"]
    assert f"Brier {pairs['brier']:.4f}, ECE 期望校准误差 {pairs['ece']:.4f}" in text
    as_records = doc["mentions_as_records"]
    row = re.search(r"│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│" + r"\s*([0-9.]+)\s*│" * 3, text)
    assert [int(row[i]) for i in range(1, 6)] == [as_records[k] for k in (
        "records", "mentions", "true_pairs", "predicted_pairs", "correct_pairs")]
    m = doc["mentions"]
    assert (f"person mentions 人员提及: {m['mentions']} ({m['internal']} internal, {m['external']} external)"
            in text)
    review = doc["review"]
    assert f"review 待审: {review['person_items']} person items for {review['person_records']} person records" in text
    with Lakehouse(copy / "ws" / "lakehouse.duckdb", read_only=True) as lake:
        assert review["person_records"] == lake.con.execute(
            "SELECT count(*) FROM dwd_record WHERE entity_type = 'Person'").fetchall()[0][0]


def test_mentions_as_records_are_the_plain_figure_without_mentions(copy):
    empty = copy / "src" / "no_mentions.csv"
    _write(empty, MENTION_HEADER, [])
    doc = _evaluate(copy, mentions=empty)
    plain, as_records = doc["entity_types"]["Person"], doc["mentions_as_records"]
    assert as_records["mentions"] == 0 and as_records["records"] == plain["records"]
    assert {k: as_records[k] for k in plain["pairwise"]} == plain["pairwise"]


def test_mentions_as_records_count_the_mentions(copy):
    doc = _evaluate(copy)
    plain, as_records = doc["entity_types"]["Person"]["pairwise"], doc["mentions_as_records"]
    assert doc["mentions"]["linked_correctly"] == 2 and doc["mentions"]["external_kept_external"] == 1
    # the leader joins A's two records and the thesis author B's: two more true pairs each, all
    # predicted; Smith stays alone
    assert as_records["records"] == doc["entity_types"]["Person"]["records"] + 3
    assert as_records["true_pairs"] == plain["true_pairs"] + 4
    assert as_records["correct_pairs"] == plain["correct_pairs"] + 4


def test_a_mention_linked_to_the_wrong_master_lowers_precision(copy):
    """The truth says the project's leader is B (the project system holds a wrong staff number, say):
    the mention went to A's master, which now holds a mention of another person."""
    wrong = copy / "src" / "wrong_mentions.csv"
    _write(wrong, MENTION_HEADER, [("projects", "J1", 1, "10001", "B"), MENTIONS[1]])
    right = _evaluate(copy)["mentions_as_records"]
    doc = _evaluate(copy, mentions=wrong)
    as_records = doc["mentions_as_records"]
    assert doc["mentions"]["linked_wrongly"] == 1
    assert as_records["precision"] < right["precision"] and as_records["precision"] < 1.0
    # the mention is predicted with A's two records (2 wrong pairs) and truly belongs with B's two (2 missed)
    assert as_records["predicted_pairs"] - as_records["correct_pairs"] == 2
    assert as_records["true_pairs"] - as_records["correct_pairs"] == 2


def test_an_older_workspace_says_calibration_is_not_available(copy):
    """A workspace resolved before the score tables (and loaded before mention sources) is still scored."""
    older = copy / "src" / "older_mentions.csv"
    _write(older, MENTION_HEADER, MENTIONS[:2])  # no mention source then
    right = _evaluate(copy, mentions=older)["mentions_as_records"]
    with Lakehouse(copy / "ws" / "lakehouse.duckdb") as lake:
        lake.con.execute("DROP TABLE IF EXISTS res_pair_score")
        lake.con.execute("DROP TABLE IF EXISTS res_entity_score")
        # an older layout; evaluate opens the lakehouse read-only, so it is not migrated
        lake.con.execute("ALTER TABLE dwd_relation DROP COLUMN IF EXISTS stated_by")
    doc = _evaluate(copy, mentions=older)
    assert doc["mentions_as_records"] == right
    cal = doc["calibration"]
    assert not cal["pairs"]["available"] and not cal["entities"]["available"] and cal["pairs"]["bins"] == []
    shown = runner.invoke(app, ["evaluate", "--workspace", str(copy / "ws"), "--truth", str(copy / "src" / "truth.csv")])
    assert shown.exit_code == 0 and "no table res_pair_score in this workspace" in " ".join(shown.output.split())


def test_a_bad_mentions_file_names_file_row_and_field(copy):
    bad = copy / "src" / "bad.csv"
    _write(bad, MENTION_HEADER, [MENTIONS[0], ("papers", "K1", "first", "John Smith", "EXTERNAL")])
    result = runner.invoke(app, ["evaluate", "--workspace", str(copy / "ws"), "--truth", str(copy / "src" / "truth.csv"),
                                 "--mentions", str(bad), "--json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert f"{bad}, row 3, field position" in " ".join(result.stderr.split())


# ---- on what resolution itself writes (the lead's score tables) -------------------------------------------

def _resolution_keeps_scores() -> bool:
    """Whether this checkout's resolve step writes the score tables: the tests below wait for it."""
    return any(ev.PAIR_SCORES in p.read_text(encoding="utf-8") for p in (ROOT / "resolution").glob("*.py")
               if p.name != "evaluate.py")


needs_scores = pytest.mark.skipif(not _resolution_keeps_scores(),
                                  reason="resolution does not write res_pair_score / res_entity_score yet")


@needs_scores
def test_a_real_run_writes_scores_that_calibration_reads(tiny):
    doc = _evaluate(tiny)
    for what in ("pairs", "entities"):
        cal = doc["calibration"][what]
        assert cal["available"], what
        assert sum(b["count"] for b in cal["bins"]) == cal["labelled"] <= cal["scored"]
    assert doc["calibration"]["pairs"]["scored"] > 0


@needs_scores
def test_calibration_on_the_demo(demo):
    truth = demo.generated.truth_path
    result = runner.invoke(app, ["evaluate", "--workspace", str(demo.workspace.root), "--truth", str(truth),
                                 "--mentions", str(truth.with_name("truth_mentions.csv")), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    with Lakehouse(demo.workspace.lakehouse, read_only=True) as lake:
        scored = lake.con.execute(f"SELECT count(*) FROM {ev.PAIR_SCORES}").fetchall()[0][0]
        floor = lake.con.execute(f"SELECT min(match_probability) FROM {ev.PAIR_SCORES}").fetchall()[0][0]
    pairs = doc["calibration"]["pairs"]
    assert pairs["scored"] == scored > 0 and floor >= 0.01
    assert sum(b["count"] for b in pairs["bins"]) == pairs["labelled"] > 0
    for b in pairs["bins"]:
        if b["count"]:
            assert b["lower"] <= b["mean_predicted"] <= b["upper"] and 0 <= b["observed"] <= 1
    # the demo is resolved almost perfectly: pairs scored near 1 are the same person
    assert pairs["bins"][-1]["observed"] > 0.95
    plain = doc["entity_types"]["Person"]["pairwise"]
    as_records = doc["mentions_as_records"]
    assert as_records["records"] == doc["entity_types"]["Person"]["records"] + as_records["mentions"]
    assert as_records["true_pairs"] >= plain["true_pairs"]
