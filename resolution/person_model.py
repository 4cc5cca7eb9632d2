"""Probabilistic Person linkage with Splink (DuckDB by default) and Chinese-aware comparisons.

The deterministic pass (resolution/exact.py) has already joined records sharing a strong
identifier; this model finds the rest: a PhD record without an ID number that is the same person
as a staff record, a traditional-character or homophone spelling, a record whose only evidence is
name, birth month, sex and college. It scores pairs; clustering (resolution/run.py) decides.

Comparisons, strongest level first:
- name: exact (term-frequency adjusted: 张伟 is weaker evidence than 欧阳修远) → same pinyin key,
  which covers homophones (张伟/章玮), traditional forms and romanised names in either order →
  pinyin Jaro-Winkler ≥ 0.88 → same surname → else;
- birth date, from the record or derived from its ID number: same day → same month (a 199903
  record meets a 1999-03-02 one) → same year → else;
- sex (recorded or from the ID number); organisation after alias resolution; ID number, staff
  number, student number, e-mail, phone: exact or else. A staff number is never compared with a
  student number: each identifier is its own column, and a missing one is no evidence.

Training: u by random sampling; m by expectation maximisation on two blockings (so that each
comparison is estimated while another is held fixed), then from steward labels when there are
any. The trained model is saved in the workspace as Splink JSON (`campus-kg model --workspace`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

PERSON_INPUT_SQL = """
WITH member AS (
    SELECT record_id, min(target_value) AS org FROM dwd_relation
    WHERE rel_type = 'MEMBER_OF' GROUP BY 1),
month_only AS (
    SELECT DISTINCT record_id FROM dwd_statement WHERE property = 'birth_date' AND flag = 'month_precision')
SELECT p.record_id AS unique_id, r.source, p.name,
       NULLIF(split_part(p.name_keys, ';', 1), '') AS pinyin_key,
       CASE WHEN p.name_keys IS NULL OR p.name_keys = '' THEN NULL ELSE string_split(p.name_keys, ';') END
           AS name_key_list,
       NULLIF(split_part(split_part(p.name_keys, ';', 1), '|', 1), '') AS surname_key,
       COALESCE(p.birth_date, TRY_CAST(strptime(substr(p.id_number, 7, 8), '%Y%m%d') AS DATE)) AS dob,
       (m.record_id IS NOT NULL AND p.birth_date IS NOT NULL) AS dob_month_only,
       year(COALESCE(p.birth_date, TRY_CAST(strptime(substr(p.id_number, 7, 8), '%Y%m%d') AS DATE)))::VARCHAR
           AS dob_year,
       COALESCE(p.sex, CASE WHEN p.id_number IS NULL THEN NULL
                            WHEN TRY_CAST(substr(p.id_number, 17, 1) AS INTEGER) % 2 = 1 THEN '1' ELSE '2' END)
           AS sex,
       COALESCE(p.org_name, member.org) AS org,
       p.id_number, p.staff_no, p.student_no, p.email, p.phone
FROM dwd_person_record p JOIN dwd_record r USING (record_id)
LEFT JOIN member USING (record_id) LEFT JOIN month_only m USING (record_id)
ORDER BY p.record_id
"""

MIN_LABELS_FOR_M = 20
# Phone numbers are left out: families share them, and only one system per person holds one.
IDENTIFIERS = ("id_number", "staff_no", "student_no", "email")


def _settings():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    name = cl.CustomComparison(
        output_column_name="name",
        comparison_description="姓名 name: exact, same pinyin, similar pinyin, same surname",
        comparison_levels=[
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name", term_frequency_adjustments=True),
            cll.CustomLevel("array_has_any(name_key_list_l, name_key_list_r)",
                            "same pinyin key (homophone, traditional or romanised form)"),
            cll.CustomLevel("jaro_winkler_similarity(pinyin_key_l, pinyin_key_r) >= 0.88", "pinyin Jaro-Winkler >= 0.88"),
            cll.CustomLevel("surname_key_l = surname_key_r", "same surname"),
            cll.ElseLevel(),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_description="出生日期 birth date (recorded or from the ID number)",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.CustomLevel("dob_l = dob_r AND NOT dob_month_only_l AND NOT dob_month_only_r", "same day"),
            cll.CustomLevel("strftime(dob_l, '%Y-%m') = strftime(dob_r, '%Y-%m')", "same month"),
            cll.CustomLevel("year(dob_l) = year(dob_r)", "same year"),
            cll.ElseLevel(),
        ],
    )
    comparisons = [name, dob, cl.ExactMatch("sex"), cl.ExactMatch("org")]
    comparisons += [cl.ExactMatch(c) for c in IDENTIFIERS]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[
            block_on("pinyin_key", "dob_year"),
            block_on("pinyin_key", "org"),
            block_on("name", "sex"),
        ],
        retain_intermediate_calculation_columns=True,
    )


@dataclass
class PersonModel:
    linker: object
    con: duckdb.DuckDBPyConnection

    def predict(self, threshold: float, batch_rows: int = 100_000) -> Iterator[dict]:
        """Scored pairs at or above `threshold`, strongest first, with the match weight of every
        comparison; streamed in batches so that millions of pairs never sit in Python at once."""
        frame = self.linker.inference.predict(threshold_match_probability=threshold)
        names = [r[0] for r in self.con.execute(f"DESCRIBE {frame.physical_name}").fetchall()]
        # mw_x: the match weight of comparison x, plus its term-frequency adjustment where there is one
        weights = [f"{n}{' + mw_tf_adj_' + n[3:] if 'mw_tf_adj_' + n[3:] in names else ''} AS {n}"
                   for n in names if n.startswith("mw_") and not n.startswith("mw_tf_adj_")]
        cols = ", ".join(["unique_id_l", "unique_id_r", "match_weight", "match_probability", *weights])
        reader = self.con.sql(f"""SELECT {cols} FROM {frame.physical_name}
            ORDER BY match_probability DESC, unique_id_l, unique_id_r""").to_arrow_reader(batch_rows)
        for batch in reader:
            yield from batch.to_pylist()

    def save(self, path: Path) -> None:
        self.linker.misc.save_model_to_json(str(path), overwrite=True)

    def close(self) -> None:
        self.con.close()


def train(records: pa.Table, labels: list[tuple[str, str, bool]] | None = None, seed: int = 42,
          memory_limit: str = "2GB") -> PersonModel:
    """Trains on the Person records (PERSON_INPUT_SQL's columns). `labels`: steward judgements
    (record, record, same?) used to estimate m where there are enough of them."""
    from splink import DuckDBAPI, Linker, block_on

    # Splink's working tables live in their own database, bounded in memory and spilling to disk.
    con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False})
    db_api = DuckDBAPI(connection=con)
    df = db_api.register(records, dataset_display_name="person_records")
    linker = Linker(df, _settings(), log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number"), block_on("staff_no"), block_on("student_no")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("pinyin_key", "dob"),
                                                                       fix_u_probabilities=True)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("id_number"),
                                                                       fix_u_probabilities=True)
    _apply_m_floors(linker)
    same = [(a, b) for a, b, is_same in labels or [] if is_same]
    if len(same) >= MIN_LABELS_FOR_M:  # Splink reads every label row as a confirmed match
        table = pa.table({"source_dataset_l": ["person_records"] * len(same), "unique_id_l": [a for a, _ in same],
                          "source_dataset_r": ["person_records"] * len(same), "unique_id_r": [b for _, b in same]})
        linker.training.estimate_m_from_pairwise_labels(db_api.register(table, dataset_display_name="labels"))
    return PersonModel(linker, con)


# The least probability that a true match shows each level. EM on pairs that share an ID number
# learns that true matches never disagree on sex or college, which would make one typo or one
# renamed college veto a match (a weight of -300). Real records do disagree sometimes: a PhD's
# college is not the college that later hired them, and 5 % of colleges were renamed.
M_FLOORS = {"name": 0.005, "dob": 0.01, "sex": 0.01, "org": 0.15,
            "student_no": 0.2, "staff_no": 0.05}  # one person holds a student number per degree


def _apply_m_floors(linker) -> None:
    for comparison in linker._settings_obj.comparisons:
        floor = M_FLOORS.get(comparison.output_column_name)
        if floor is None:
            continue
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        ms = [max(getattr(lv, "_m_probability", None) or 0.0, floor) for lv in levels]
        total = sum(ms)
        for lv, m in zip(levels, ms, strict=True):
            lv.m_probability = m / total


def match_weights(model_json: Path) -> list[dict]:
    """The saved model's comparisons and levels with their m, u and match weight, for inspection."""
    import math

    spec = json.loads(model_json.read_text(encoding="utf-8"))
    out = []
    for comparison in spec["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            out.append({"comparison": comparison["output_column_name"], "level": level.get("label_for_charts"),
                        "m": m, "u": u,
                        "match_weight": math.log2(m / u) if m and u else None})
    return out
