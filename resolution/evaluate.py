"""How good resolution is against a truth file (source, record_key, entity_type, entity_id) and a
mentions file (source, record_key, position, mention, entity_id): pairwise and B-cubed P / R / F1,
hard cases, mention linking, person pairwise with mentions counted as records, the calibration of
the match probabilities resolution keeps, and the review load — `campus-kg evaluate` (docs/resolution.md,
"Evaluation"). Everything is DuckDB SQL over cluster and decile counts: no pair enumeration, no loop
over records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.lakehouse import Lakehouse, fetch_one


class NothingToEvaluate(LookupError):
    """No record of the truth file is in the workspace: a score would be meaningless (1.0 over nothing)."""


def require_overlap(lake: Lakehouse, truth_csv: Path) -> int:
    """The number of truth rows that name a resolved record of the workspace; raises when none do."""
    n = fetch_one(lake.con, """
        WITH truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true))
        SELECT count(*) FROM truth t
        JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
        JOIN res_link l ON l.member_id = d.record_id AND l.entity_type = d.entity_type""", [str(truth_csv)])[0]
    if not n:
        raise NothingToEvaluate(f"{truth_csv}: none of its records is a resolved record of this workspace "
                                "真值文件与工作区没有共同记录 (are source and record_key the mapping's source names "
                                "and record keys?)")
    return n


@dataclass(frozen=True)
class PairwiseScore:
    entity_type: str
    records: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def pairwise(lake: Lakehouse, truth_csv: Path, entity_type: str = "Person", links: str = "res_link") -> PairwiseScore:
    """`links`: the table of (member_id, entity_type, master_id) to score (a baseline's, say)."""
    return _pairwise_of(lake, entity_type, f"""
        truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
        j AS (
            SELECT t.entity_id AS truth, l.master_id AS pred
            FROM truth t
            JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
            JOIN {links} l ON l.member_id = d.record_id AND l.entity_type = d.entity_type
            WHERE t.entity_type = ?)""", [str(truth_csv), entity_type])


def _pairwise_of(lake: Lakehouse, entity_type: str, ctes: str, params: list) -> PairwiseScore:
    """Pairwise counts of `ctes`, which end in j(truth, pred): one row per record scored."""
    pairs = "sum(n * (n - 1) / 2)"
    row = fetch_one(lake.con, f"""
        WITH {ctes}
        SELECT (SELECT count(*) FROM j),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY truth)),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY pred)),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY truth, pred))""", params)
    records, true_pairs, predicted, correct = (int(v or 0) for v in row)
    return PairwiseScore(entity_type, records, true_pairs, predicted, correct)


@dataclass(frozen=True)
class BCubed:
    entity_type: str
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


_JOINED = """
    WITH truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
    j AS (
        SELECT t.entity_id AS truth, l.master_id AS pred, d.record_id
        FROM truth t
        JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
        JOIN {links} l ON l.member_id = d.record_id AND l.entity_type = d.entity_type
        WHERE t.entity_type = ?)"""


def bcubed(lake: Lakehouse, truth_csv: Path, entity_type: str = "Person", links: str = "res_link") -> BCubed:
    """B-cubed precision and recall: per record, the share of its predicted entity that truly
    belongs with it, and the share of its true entity that was predicted with it; averaged."""
    row = fetch_one(lake.con, _JOINED.format(links=links) + """,
        cells AS (SELECT truth, pred, count(*) AS n FROM j GROUP BY ALL),
        sizes AS (SELECT c.n, t.size AS t_size, p.size AS p_size FROM cells c
                  JOIN (SELECT truth, count(*) AS size FROM j GROUP BY 1) t USING (truth)
                  JOIN (SELECT pred, count(*) AS size FROM j GROUP BY 1) p USING (pred))
        SELECT sum(n * n / p_size) / sum(n), sum(n * n / t_size) / sum(n) FROM sizes""", [str(truth_csv), entity_type])
    return BCubed(entity_type, float(row[0] or 1.0), float(row[1] or 1.0))


def entity_types(truth_csv: Path, lake: Lakehouse) -> list[str]:
    return [r[0] for r in lake.con.execute(
        "SELECT DISTINCT entity_type FROM read_csv(?, header = true, all_varchar = true) ORDER BY 1",
        [str(truth_csv)]).fetchall()]


@dataclass(frozen=True)
class Breakdown:
    label: str
    pairs: int
    correct: int

    @property
    def rate(self) -> float:
        return self.correct / self.pairs if self.pairs else 1.0


def hard_pairs(lake: Lakehouse, truth_csv: Path) -> list[Breakdown]:
    """Recall on true pairs whose names are written differently (as read, before standardisation),
    and precision on pairs of different people with the same standardised name (kept apart)."""
    con = lake.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE _eval AS {_JOINED.format(links='res_link')} SELECT * FROM j",
                [str(truth_csv), "Person"])
    con.execute("""CREATE OR REPLACE TEMP TABLE _eval_names AS
        SELECT e.*, p.name, s.original FROM _eval e JOIN dwd_person_record p USING (record_id)
        LEFT JOIN (SELECT record_id, min(original) AS original FROM dwd_statement WHERE property = 'name'
                   GROUP BY 1) s USING (record_id)""")
    differently = fetch_one(con, """SELECT count(*), count(*) FILTER (WHERE a.pred = b.pred)
        FROM _eval_names a JOIN _eval_names b ON a.truth = b.truth AND a.record_id < b.record_id
        WHERE a.original IS DISTINCT FROM b.original""")
    namesakes = fetch_one(con, """SELECT count(*), count(*) FILTER (WHERE a.pred <> b.pred)
        FROM _eval_names a JOIN _eval_names b ON a.name = b.name AND a.record_id < b.record_id
        WHERE a.truth <> b.truth""")
    return [Breakdown("recall: same person, name written differently", *differently),
            Breakdown("precision: same name, different people", *namesakes)]


@dataclass(frozen=True)
class MentionScore:
    mentions: int
    internal: int
    linked_correctly: int
    linked_wrongly: int
    external: int
    external_kept_external: int

    @property
    def precision(self) -> float:
        linked = self.linked_correctly + self.linked_wrongly
        return self.linked_correctly / linked if linked else 1.0

    @property
    def recall(self) -> float:
        return self.linked_correctly / self.internal if self.internal else 1.0


# Person mentions of the --mentions file, each with the master it was linked to (NULL: left unlinked).
# A mention stated by identifier (负责人工号, 使用人工号) takes that identifier's master; one stated by
# name takes res_mention's. Parameters: the mentions CSV.
_MENTION_PREDICTIONS = """
    mention_rows AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
    identifiers AS (  -- equi-joins, not one join on OR: that would compare every relation with every person
        SELECT 'staff_no' AS match_on, staff_no AS value, record_id FROM dwd_person_record WHERE staff_no IS NOT NULL
        UNION ALL
        SELECT 'student_no', student_no, record_id FROM dwd_person_record WHERE student_no IS NOT NULL),
    by_id AS (
        SELECT r.record_id, r.position, min(l.master_id) AS master_id
        FROM dwd_relation r JOIN identifiers p ON p.match_on = r.match_on AND p.value = r.target_value
        JOIN res_link l ON l.member_id = p.record_id AND l.entity_type = 'Person'
        WHERE r.target_type = 'Person' GROUP BY 1, 2),
    by_name AS (SELECT record_id, position, min(master_id) AS master_id FROM res_mention GROUP BY 1, 2),
    mention_pred AS (
        SELECT m.source, m.record_key, CAST(m.position AS INTEGER) AS position, m.entity_id, d.record_id,
               COALESCE(i.master_id, n.master_id) AS predicted
        FROM mention_rows m JOIN dwd_record d ON d.source = m.source AND d.record_key = m.record_key
        LEFT JOIN (SELECT DISTINCT stated_by, record_id, position FROM dwd_relation WHERE stated_by IS NOT NULL) s
          ON s.stated_by = d.record_id  -- a mention source's row: scored where its mention is (docs/mapping.md)
        LEFT JOIN by_id i ON i.record_id = COALESCE(s.record_id, d.record_id)
              AND i.position = COALESCE(s.position, CAST(m.position AS INTEGER))
        LEFT JOIN by_name n ON n.record_id = COALESCE(s.record_id, d.record_id)
              AND n.position = COALESCE(s.position, CAST(m.position AS INTEGER)))"""


def mentions(lake: Lakehouse, truth_csv: Path, mentions_csv: Path) -> MentionScore:
    """Person mentions (authors, leaders, custodians) against truth_mentions.csv: linked to the
    master holding the true person's records, or left external when the person is external."""
    row = fetch_one(lake.con, """
        WITH truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true) WHERE entity_type = 'Person'),
        true_master AS (  -- the master most of a true person's records went to
            SELECT entity_id, arg_max(master_id, n) AS master_id FROM (
                SELECT t.entity_id, l.master_id, count(*) AS n FROM truth t
                JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
                JOIN res_link l ON l.member_id = d.record_id AND l.entity_type = 'Person' GROUP BY ALL)
            GROUP BY 1),""" + _MENTION_PREDICTIONS + """,
        pred AS (SELECT p.entity_id, tm.master_id AS expected, p.predicted
                 FROM mention_pred p LEFT JOIN true_master tm USING (entity_id))
        SELECT count(*),
               count(*) FILTER (WHERE entity_id <> 'EXTERNAL'),
               count(*) FILTER (WHERE entity_id <> 'EXTERNAL' AND predicted = expected),
               count(*) FILTER (WHERE predicted IS NOT NULL AND predicted IS DISTINCT FROM expected),
               count(*) FILTER (WHERE entity_id = 'EXTERNAL'),
               count(*) FILTER (WHERE entity_id = 'EXTERNAL' AND predicted IS NULL)
        FROM pred""", [str(truth_csv), str(mentions_csv)])
    return MentionScore(*(int(v or 0) for v in row))


def mentions_as_records(lake: Lakehouse, truth_csv: Path, mentions_csv: Path) -> PairwiseScore:
    """Person pairwise P / R / F1 with every mention one more record (issue 12's measure): a mention
    linked to master M is in M's cluster, an unlinked one is a cluster of its own; its true entity
    is the mentions file's, and each EXTERNAL mention is a true entity of its own (the file does not
    say which outsiders are the same person)."""
    return _pairwise_of(lake, "Person", """
        truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
        records AS (
            SELECT t.entity_id AS truth, l.master_id AS pred
            FROM truth t
            JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
            JOIN res_link l ON l.member_id = d.record_id AND l.entity_type = d.entity_type
            WHERE t.entity_type = 'Person'),""" + _MENTION_PREDICTIONS + """,
        j AS (
            SELECT truth, pred FROM records
            UNION ALL
            SELECT CASE WHEN entity_id = 'EXTERNAL' THEN 'external:' || record_id || ':' || position
                        ELSE entity_id END,
                   COALESCE(predicted, 'mention:' || record_id || ':' || position)
            FROM mention_pred)""", [str(truth_csv), str(mentions_csv)])


# ---- calibration: do match probabilities mean what they say? ------------------------------------------

PAIR_SCORES, ENTITY_SCORES = "res_pair_score", "res_entity_score"
BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float | None  # None: no scored item in this decile
    observed: float | None        # share truly the same entity


@dataclass(frozen=True)
class Calibration:
    table: str
    available: bool       # False: the workspace was resolved before this table was kept
    scored: int = 0       # rows of the table
    labelled: int = 0     # of them, with both sides in the truth: the rows below
    bins: tuple[CalibrationBin, ...] = ()
    brier: float | None = None
    ece: float | None = None  # expected calibration error: |mean predicted − observed|, weighted by decile size

    def as_dict(self) -> dict:
        return {"table": self.table, "available": self.available, "scored": self.scored, "labelled": self.labelled,
                "brier": self.brier, "ece": self.ece, "bins": [b.__dict__ for b in self.bins]}


# The truth-labelled Person records. Parameter: the truth CSV.
_LABELLED = """
    labelled AS (
        SELECT DISTINCT d.record_id, t.entity_id
        FROM read_csv(?, header = true, all_varchar = true) t
        JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key AND d.entity_type = 'Person'
        WHERE t.entity_type = 'Person')"""


def pair_calibration(lake: Lakehouse, truth_csv: Path) -> Calibration:
    """res_pair_score's pairs whose two records are both in the truth, by decile of probability:
    observed = the share of pairs that truly are one person."""
    if not lake.has_table(PAIR_SCORES):
        return Calibration(PAIR_SCORES, False)
    return _calibration(lake, PAIR_SCORES, "WITH" + _LABELLED + f""",
        scored AS (
            SELECT s.match_probability AS p, CAST(a.entity_id = b.entity_id AS INTEGER) AS y
            FROM {PAIR_SCORES} s
            JOIN labelled a ON a.record_id = s.record_a JOIN labelled b ON b.record_id = s.record_b
            WHERE s.match_probability IS NOT NULL)""", [str(truth_csv)])


def entity_calibration(lake: Lakehouse, truth_csv: Path, mentions_csv: Path | None) -> Calibration:
    """res_entity_score's (item, candidate master) rows by decile of probability: observed = the
    share where the item's true entity is the candidate's. A candidate's true entity is the one most
    of its truth-labelled records belong to, the item itself not counted (a record already linked to
    the candidate must not vouch for itself). Items: Person records in the truth file, and person
    mentions in the mentions file (EXTERNAL: never the candidate's)."""
    if not lake.has_table(ENTITY_SCORES):
        return Calibration(ENTITY_SCORES, False)
    params = [str(truth_csv)]
    mention_items = "SELECT NULL::VARCHAR AS item_id, NULL::VARCHAR AS entity_id WHERE false"
    if mentions_csv is not None:
        params.append(str(mentions_csv))
        mention_items = """
            SELECT DISTINCT 'mention:' || r.record_id || ':' || r.rel_type || ':' || r.position, m.entity_id
            FROM read_csv(?, header = true, all_varchar = true) m
            JOIN dwd_record d ON d.source = m.source AND d.record_key = m.record_key
            -- the record's own relationship at that position, or the one a mention source's row states
            JOIN dwd_relation r ON COALESCE(r.stated_by, r.record_id) = d.record_id AND r.target_type = 'Person'
                               AND (r.stated_by IS NOT NULL OR r.position = CAST(m.position AS INTEGER))"""
    return _calibration(lake, ENTITY_SCORES, "WITH" + _LABELLED + f""",
        master_counts AS (
            SELECT l.master_id, x.entity_id, count(*) AS n FROM labelled x
            JOIN res_link l ON l.member_id = x.record_id AND l.entity_type = 'Person' GROUP BY ALL),
        items AS (SELECT record_id AS item_id, entity_id FROM labelled UNION ALL {mention_items}),
        rows AS (
            SELECT s.item_id, s.master_id, s.match_probability AS p, i.entity_id AS item_truth,
                   own.master_id AS own_master
            FROM {ENTITY_SCORES} s JOIN items i USING (item_id)
            LEFT JOIN res_link own ON own.member_id = s.item_id AND own.entity_type = 'Person'
            WHERE s.match_probability IS NOT NULL),
        candidate_truth AS (
            SELECT r.item_id, r.master_id, c.entity_id, c.n - CAST(r.own_master IS NOT DISTINCT FROM r.master_id
                                                                   AND c.entity_id = r.item_truth AS INTEGER) AS n
            FROM rows r JOIN master_counts c USING (master_id)),
        majority AS (
            SELECT item_id, master_id, arg_max(entity_id, (n, entity_id)) AS entity_id FROM candidate_truth
            WHERE n > 0 GROUP BY ALL),
        scored AS (
            SELECT r.p, CAST(r.item_truth = m.entity_id AS INTEGER) AS y
            FROM rows r JOIN majority m USING (item_id, master_id))""", params)


def _calibration(lake: Lakehouse, table: str, ctes: str, params: list) -> Calibration:
    """Deciles, Brier score and expected calibration error of `ctes`, which end in scored(p, y)."""
    con = lake.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE _calibration AS {ctes} SELECT p, y FROM scored", params)
    rows = con.execute(f"""
        WITH binned AS (SELECT least(greatest(CAST(floor(p * {BINS}) AS INTEGER), 0), {BINS - 1}) AS b, p, y
                        FROM _calibration)
        SELECT g.b, count(x.p), avg(x.p), avg(x.y)
        FROM range({BINS}) g(b) LEFT JOIN binned x USING (b) GROUP BY g.b ORDER BY g.b""").fetchall()
    labelled, brier = fetch_one(con, "SELECT count(*), avg((p - y) * (p - y)) FROM _calibration")
    scored = fetch_one(con, f"SELECT count(*) FROM {table}")[0]
    con.execute("DROP TABLE _calibration")
    bins = tuple(CalibrationBin(round(b / BINS, 10), round((b + 1) / BINS, 10), int(n), mean, observed)
                 for b, n, mean, observed in rows)
    ece = sum(b.count * abs(b.mean_predicted - b.observed) for b in bins if b.count) / labelled if labelled else None
    return Calibration(table, True, int(scored), int(labelled), bins, brier, ece)


# ---- review load, input checks, the whole report -------------------------------------------------------

@dataclass(frozen=True)
class ReviewLoad:
    person_items: int    # review items about persons the last resolution left (pairs, ambiguous mentions)
    person_records: int  # Person records of the workspace

    @property
    def per_person_record(self) -> float:
        return self.person_items / self.person_records if self.person_records else 0.0


def review_load(lake: Lakehouse) -> ReviewLoad:
    items = fetch_one(lake.con, "SELECT count(*) FROM res_review WHERE entity_type = 'Person'")[0] \
        if lake.has_table("res_review") else 0
    records = fetch_one(lake.con, "SELECT count(*) FROM dwd_record WHERE entity_type = 'Person'")[0]
    return ReviewLoad(int(items), int(records))


TRUTH_COLUMNS = ("source", "record_key", "entity_type", "entity_id")
MENTION_COLUMNS = ("source", "record_key", "position", "mention", "entity_id")


class BadTruthFile(ValueError):
    """A truth or mentions file that cannot be read as documented (names file, row and field)."""


def check_truth_files(truth_csv: Path, mentions_csv: Path | None) -> None:
    """The header of each file, and every mention's position (an integer): a clear message, not a
    database error, when a file is not what `--truth` / `--mentions` expect."""
    import csv

    for path, required in ((truth_csv, TRUTH_COLUMNS), (mentions_csv, MENTION_COLUMNS)):
        if path is None:
            continue
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise BadTruthFile(f"{path}, row 1 (header): missing field(s) {', '.join(missing)} 缺少字段; "
                                   f"expected {','.join(required)}")
            if path is mentions_csv:
                for row_no, row in enumerate(reader, start=2):
                    if not (row["position"] or "").strip().isdigit():
                        raise BadTruthFile(f"{path}, row {row_no}, field position: {row['position']!r} is not a "
                                           "whole number 位置须为整数")


def evaluation(lake: Lakehouse, truth_csv: Path, mentions_csv: Path | None) -> dict:
    """Every figure `campus-kg evaluate` shows, as one JSON-ready document (the tables are drawn from it)."""
    check_truth_files(truth_csv, mentions_csv)
    require_overlap(lake, truth_csv)  # no score over no records (1.0 of nothing)
    _read_older_workspace(lake)
    out: dict = {"truth": str(truth_csv), "mentions_file": str(mentions_csv) if mentions_csv else None,
                 "entity_types": {}}
    for et in entity_types(truth_csv, lake):
        pw, b3 = pairwise(lake, truth_csv, et), bcubed(lake, truth_csv, et)
        out["entity_types"][et] = {"records": pw.records, "pairwise": _pairwise_dict(pw),
                                   "bcubed": {"precision": b3.precision, "recall": b3.recall, "f1": b3.f1}}
    out["hard_cases"] = {b.label: {"pairs": b.pairs, "correct": b.correct, "rate": b.rate}
                         for b in hard_pairs(lake, truth_csv)}
    out["mentions"] = out["mentions_as_records"] = None
    if mentions_csv is not None:
        m = mentions(lake, truth_csv, mentions_csv)
        out["mentions"] = {**m.__dict__, "precision": m.precision, "recall": m.recall}
        as_records = mentions_as_records(lake, truth_csv, mentions_csv)
        out["mentions_as_records"] = {"records": as_records.records, "mentions": m.mentions,
                                      **_pairwise_dict(as_records)}
    out["calibration"] = {"pairs": pair_calibration(lake, truth_csv).as_dict(),
                          "entities": entity_calibration(lake, truth_csv, mentions_csv).as_dict()}
    review = review_load(lake)
    out["review"] = {"person_items": review.person_items, "person_records": review.person_records,
                     "per_person_record": review.per_person_record}
    return out


def _read_older_workspace(lake: Lakehouse) -> None:
    """A workspace loaded before mention sources has no dwd_relation.stated_by, and evaluate opens
    it read-only (no migration): a temporary view gives the column, empty, for this connection."""
    have = {r[0] for r in lake.con.execute("DESCRIBE dwd_relation").fetchall()}
    if "stated_by" not in have:
        database = fetch_one(lake.con, "SELECT current_database()")[0]
        lake.con.execute(f"""CREATE OR REPLACE TEMP VIEW dwd_relation AS
            SELECT *, NULL::VARCHAR AS stated_by FROM "{database}".main.dwd_relation""")


def _pairwise_dict(score: PairwiseScore) -> dict:
    return {"precision": score.precision, "recall": score.recall, "f1": score.f1, "true_pairs": score.true_pairs,
            "predicted_pairs": score.predicted_pairs, "correct_pairs": score.correct_pairs}
