"""Pairwise precision / recall / F1 of resolution against a truth file (source, record_key, entity_type,
entity_id), computed from cluster-intersection sizes (no pair enumeration)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.lakehouse import Lakehouse, fetch_one


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


def pairwise(lake: Lakehouse, truth_csv: Path, entity_type: str = "Person") -> PairwiseScore:
    pairs = "sum(n * (n - 1) / 2)"
    row = fetch_one(lake.con, f"""
        WITH truth AS (SELECT * FROM read_csv(?, header = true, all_varchar = true)),
        j AS (
            SELECT t.entity_id AS truth, l.master_id AS pred
            FROM truth t
            JOIN dwd_record d ON d.source = t.source AND d.record_key = t.record_key
            JOIN res_link l ON l.member_id = d.record_id AND l.entity_type = d.entity_type
            WHERE t.entity_type = ?)
        SELECT (SELECT count(*) FROM j),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY truth)),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY pred)),
               (SELECT {pairs} FROM (SELECT count(*) AS n FROM j GROUP BY truth, pred))""",
                    [str(truth_csv), entity_type])
    records, true_pairs, predicted, correct = (int(v or 0) for v in row)
    return PairwiseScore(entity_type, records, true_pairs, predicted, correct)
