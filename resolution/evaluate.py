"""Pairwise precision / recall / F1 of resolution against a truth file (source, record_key, entity_type,
entity_id), computed from cluster-intersection sizes (no pair enumeration)."""

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
    pairs = "sum(n * (n - 1) / 2)"
    row = fetch_one(lake.con, f"""
        WITH truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
        j AS (
            SELECT t.entity_id AS truth, l.master_id AS pred
            FROM truth t
            JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
            JOIN {links} l ON l.member_id = d.record_id AND l.entity_type = d.entity_type
            WHERE t.entity_type = ?)
        SELECT (SELECT count(*) FROM j),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY truth)),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY pred)),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY truth, pred))""",
                    [str(truth_csv), entity_type])
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
            GROUP BY 1),
        m AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
        by_id AS (  -- mentions stated by identifier (负责人工号, 使用人工号)
            SELECT r.record_id, r.position, min(l.master_id) AS master_id
            FROM dwd_relation r JOIN dwd_person_record p
              ON (r.match_on = 'staff_no' AND p.staff_no = r.target_value)
              OR (r.match_on = 'student_no' AND p.student_no = r.target_value)
            JOIN res_link l ON l.member_id = p.record_id AND l.entity_type = 'Person'
            WHERE r.target_type = 'Person' GROUP BY 1, 2),
        pred AS (
            SELECT m.entity_id, tm.master_id AS expected,
                   COALESCE(i.master_id, n.master_id) AS predicted
            FROM m JOIN dwd_record d ON d.source = m.source AND d.record_key = m.record_key
            LEFT JOIN true_master tm USING (entity_id)
            LEFT JOIN by_id i ON i.record_id = d.record_id AND i.position = CAST(m.position AS INTEGER)
            LEFT JOIN res_mention n ON n.record_id = d.record_id AND n.position = CAST(m.position AS INTEGER))
        SELECT count(*),
               count(*) FILTER (WHERE entity_id <> 'EXTERNAL'),
               count(*) FILTER (WHERE entity_id <> 'EXTERNAL' AND predicted = expected),
               count(*) FILTER (WHERE predicted IS NOT NULL AND predicted IS DISTINCT FROM expected),
               count(*) FILTER (WHERE entity_id = 'EXTERNAL'),
               count(*) FILTER (WHERE entity_id = 'EXTERNAL' AND predicted IS NULL)
        FROM pred""", [str(truth_csv), str(mentions_csv)])
    return MentionScore(*(int(v or 0) for v in row))
