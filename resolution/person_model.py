"""Probabilistic Person linkage with Splink (DuckDB by default) and Chinese-aware comparisons.

The deterministic pass (resolution/exact.py) has already joined records sharing a strong
identifier; this model finds the rest: a PhD record without an ID number that is the same person
as a staff record, a traditional-character or homophone spelling, a record whose only evidence is
name, birth month, sex and college. It scores pairs; clustering (resolution/run.py) decides.

Comparisons, strongest level first:
- name: exact (term-frequency adjusted: 张伟 is weaker evidence than 欧阳修远) → same pinyin key,
  which covers homophones (张伟/章玮), traditional forms and romanised names in either order →
  surname and given name each within a typo, in either order (Western and romanised names) →
  pinyin Jaro-Winkler ≥ 0.88 → same surname → same given name or one typo in it → else;
- address and postcode (one comparison: a shared address implies a shared postcode);
- birth date, from the record or derived from its ID number: same day → same month (a 199903
  record meets a 1999-03-02 one) → one typo (1981 / 1918) → same year → else;
- sex (recorded or from the ID number); organisation after alias resolution; ID number (on its
  15-digit projection), e-mail: exact or else; staff number, student number and passport: exact →
  one typo → else.
  A staff number is never compared with a student number: each identifier is its own column, and
  a missing one is no evidence.

Training: the prior from pairs sharing an identifier (or name and birth date, or an assumed floor);
u by random sampling, corrected for the matches among random pairs; m by expectation maximisation
on two blockings (so that each comparison is estimated while another is held fixed), then from
steward labels when there are any. Thin evidence never stops it: a step without data is skipped
and said so in the model's notes, and a comparison nothing could learn takes m from PRIOR_M. The
trained model is saved in the workspace as Splink JSON (`campus-kg model --workspace`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import re

import duckdb
import pyarrow as pa

from resolution.engines import MODEL_MEMORY_LIMIT, ComparisonSql, DuckDBEngine, DuckDBSql
from resolution.exact import id_projection_sql

PERSON_INPUT_SQL = """
WITH member AS (
    SELECT record_id, min(target_value) AS org FROM dwd_relation
    WHERE rel_type = 'MEMBER_OF' GROUP BY 1),
month_only AS (
    SELECT DISTINCT record_id FROM dwd_statement WHERE property = 'birth_date' AND flag = 'month_precision'),
keyed AS (  -- a one-word name (no pinyin or romanised key) is its own key, so that blocking finds it
    SELECT p.*, COALESCE(NULLIF(split_part(p.name_keys, ';', 1), ''), NULLIF(lower(replace(p.name, ' ', '')), ''))
               AS first_key
    FROM dwd_person_record p)
SELECT p.record_id AS unique_id, r.source, p.name,
       p.first_key AS pinyin_key,
       CASE WHEN p.name_keys IS NULL OR p.name_keys = '' THEN
                CASE WHEN p.first_key IS NULL THEN NULL ELSE [p.first_key] END
            ELSE string_split(p.name_keys, ';') END AS name_key_list,
       NULLIF(split_part(p.first_key, '|', 1), '') AS surname_key,
       NULLIF(split_part(p.first_key, '|', 2), '') AS given_key,
       array_to_string(list_sort(string_split(p.first_key, '|')), '|') AS any_order_key,  -- Riddell Kirra
       COALESCE(p.birth_date, TRY_CAST(strptime(substr(p.id_number, 7, 8), '%Y%m%d') AS DATE)) AS dob,
       (m.record_id IS NOT NULL AND p.birth_date IS NOT NULL) AS dob_month_only,
       year(COALESCE(p.birth_date, TRY_CAST(strptime(substr(p.id_number, 7, 8), '%Y%m%d') AS DATE)))::VARCHAR
           AS dob_year,
       COALESCE(p.sex, CASE WHEN p.id_number IS NULL THEN NULL
                            WHEN TRY_CAST(substr(p.id_number, 17, 1) AS INTEGER) % 2 = 1 THEN '1' ELSE '2' END)
           AS sex,
       COALESCE(p.org_name, member.org) AS org,
       ID_PROJECTION AS id_number,  -- legacy 15-digit projection: an upgraded number's century is a guess
       p.staff_no, p.student_no, p.email, p.phone, p.passport_no, p.bank_account,
       NULLIF(lower(regexp_replace(p.address, '[^[:alnum:]]+', ' ', 'g')), ' ') AS address,
       NULLIF(regexp_replace(upper(p.postcode), '[[:space:]]+', '', 'g'), '') AS postcode
FROM keyed p JOIN dwd_record r USING (record_id)
LEFT JOIN member USING (record_id) LEFT JOIN month_only m USING (record_id)
ORDER BY p.record_id
""".replace("ID_PROJECTION", id_projection_sql("p.id_number"))

MIN_LABELS_FOR_M = 20
# Phone numbers are left out: families share them, and only one system per person holds one.
IDENTIFIERS = ("id_number", "passport_no", "staff_no", "student_no", "email")
# Evidence compared exactly but never an identifier of its own: a bank account is a payee's (finance
# records without any ID), but a family may share one.
EXACT_EVIDENCE = ("bank_account",)


def with_sound_keys(records: pa.Table) -> pa.Table:
    """Adds Soundex codes of the surname and given name keys (`smith|john` -> S530, J500) and
    `sound_key`, the two codes sorted (`J500|S530`), so that blocking survives a typo that keeps the
    sound (Smith / Smyth, Catherine / Katherine's vowels) and a swapped name order. Pinyin keys get
    codes too: a romanised Chinese name is typed like any other."""
    import jellyfish

    def code(part: str | None) -> str | None:
        letters = re.sub(r"[^a-z]", "", part or "")
        return jellyfish.soundex(letters) if letters else None

    surnames = [code(v) for v in records.column("surname_key").to_pylist()]
    givens = [code(v) for v in records.column("given_key").to_pylist()]
    keys = ["|".join(sorted((a or "", b or ""))) if a or b else None for a, b in zip(surnames, givens, strict=True)]
    return (records.append_column("surname_sound", pa.array(surnames, pa.string()))
            .append_column("given_sound", pa.array(givens, pa.string()))
            .append_column("sound_key", pa.array(keys, pa.string())))


# Candidate pairs come from several blockings so that one typo or one missing field does not hide a
# pair: the whole name key with the birth year or the organisation, the name with sex, and the
# surname or the given name with the exact birth date (a typo in the other half of the name).
BLOCKING_COLUMNS = (("pinyin_key", "dob_year"), ("pinyin_key", "org"), ("name", "sex"),
                    ("surname_key", "dob"), ("given_key", "dob"))
# Blockings that survive one typo in the name (its sound) or in the birth date (the postcode and
# address instead), each admitted while it pairs at most TYPO_PAIRS_PER_RECORD pairs per record, so
# that pair counts stay linear in the number of records (a dormitory address shared by thousands of
# students, or a common name's sound in a large population, is left out, and said so).
TYPO_BLOCKING = (("sound_key", "dob_year"), ("postcode", "dob"), ("surname_sound", "postcode"),
                 ("given_sound", "postcode"), ("sound_key", "postcode"))
TYPO_PAIRS_PER_RECORD = 5
# When the records carry a name and nothing else to block with, the name key alone.
NAME_ONLY_BLOCKING = ("pinyin_key",)
# Broad blockings, used only while together they stay within BROAD_PAIRS_PER_RECORD pairs per record:
# in a small population they find what two typos hide from the blockings above (a swapped name
# order, a typo in each half of the name); in a large one they would compare too much.
BROAD_BLOCKING = (("any_order_key",), ("dob",), ("surname_key",), ("given_key",), ("sound_key",), ("address",))
BROAD_PAIRS_PER_RECORD = 20
# A blocking compares every pair inside each of its blocks, so a block of thousands (张伟, male, at
# 1.5 M records) costs quadratically and finds nothing the other blockings miss: two records of one
# person share a birth year or a unit as well as the name. A blocking that would pair more than
# BROAD_PAIRS_PER_RECORD per record (a typo blocking: TYPO_PAIRS_PER_RECORD) leaves out its blocks of
# more than MAX_BLOCK records, which keeps pairs linear in records and lets the typo blockings in at
# any size; in a small population nothing changes (choose_blocking).
MAX_BLOCK = 50


# Identifiers typed by hand, where one slipped or swapped digit is still evidence (an ID number
# with a typo fails its check character and never reaches resolution).
TYPO_IDENTIFIERS = ("staff_no", "student_no", "passport_no")
TYPO_LEVEL = "one typo (a changed, missing or swapped character)"
# Two neighbouring characters swapped (Damerau-Levenshtein 1, Levenshtein 2): how a number is mistyped
# by hand, and rare between two people's numbers even where numbers are issued in sequence (the
# next student's number differs in one digit, not by a swap), so a level of its own.
SWAP_LEVEL = "two neighbouring characters swapped"
DATE_TYPO_LEVEL = "one typo in the date (a changed or swapped digit: 1981 / 1918)"


SIMILAR_PARTS_LEVEL = "surname and given name each Jaro-Winkler >= 0.92 (either order)"


def similar_parts_sql(sql: ComparisonSql) -> str:
    jw = sql.jaro_winkler
    return f"""({jw('surname_key_l', 'surname_key_r')} >= 0.92 AND {jw('given_key_l', 'given_key_r')} >= 0.92)
               OR ({jw('surname_key_l', 'given_key_r')} >= 0.92 AND {jw('given_key_l', 'surname_key_r')} >= 0.92)"""

# Below this many records a name's frequency says little, and counts its own duplicates.
MIN_RECORDS_FOR_TF = 1000


def _settings(blocking: list[tuple[str, ...]], capped: set[int], term_frequencies: bool = True,
              sql: ComparisonSql | None = None):
    """`blocking`: the columns of each blocking rule, `capped` the rules that leave out blocks over
    MAX_BLOCK records (the records carry those rules' block sizes: with_block_sizes); `sql`: the
    engine's dialect for the custom levels (resolution/engines.py), DuckDB's by default."""
    from splink import block_on

    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    sql = sql or DuckDBSql()
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_description="姓名 name: exact, same pinyin, similar parts, similar pinyin, same surname, "
                               "similar given name",
        comparison_levels=[
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name", term_frequency_adjustments=term_frequencies),
            cll.CustomLevel(sql.lists_overlap("name_key_list_l", "name_key_list_r"),
                            "same pinyin key (homophone, traditional or romanised form)"),
            # Western and romanised names: a typo in the surname, the given name or both, in either order
            cll.CustomLevel(similar_parts_sql(sql), SIMILAR_PARTS_LEVEL),
            cll.CustomLevel(f"{sql.jaro_winkler('pinyin_key_l', 'pinyin_key_r')} >= 0.88", "pinyin Jaro-Winkler >= 0.88"),
            cll.CustomLevel("surname_key_l = surname_key_r", "same surname"),
            # a changed (married) or mistyped surname; the model learns how common this is among non-matches
            cll.CustomLevel(f"{sql.jaro_winkler('given_key_l', 'given_key_r')} >= 0.92",
                            "same given name, or one typo in it (Jaro-Winkler >= 0.92)"),
            cll.ElseLevel(),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_description="住址 address and postcode: same, one typo, same postcode",
        comparison_levels=[
            cll.CustomLevel("NOT ((address_l IS NOT NULL AND address_r IS NOT NULL) "
                            "OR (postcode_l IS NOT NULL AND postcode_r IS NOT NULL))").configure(is_null_level=True),
            # No term frequencies: in a few thousand records a duplicated address counts its own copies.
            # A dormitory shared by many students makes the exact level common among non-matches,
            # and u (from random pairs) says so.
            cll.ExactMatchLevel("address"),
            cll.CustomLevel(f"{sql.jaro_winkler('address_l', 'address_r')} >= 0.9", "address Jaro-Winkler >= 0.9"),
            cll.CustomLevel(sql.half_the_words("address_l", "address_r"), "half the words of the address or more"),
            cll.CustomLevel("postcode_l = postcode_r", "same postcode"),
            cll.CustomLevel(sql.within_one_typo("postcode_l", "postcode_r"), "postcode one typo"),
            cll.ElseLevel(),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_description="出生日期 birth date (recorded or from the ID number)",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.CustomLevel("dob_l = dob_r AND NOT dob_month_only_l AND NOT dob_month_only_r", "same day"),
            cll.CustomLevel(f"{sql.year_month('dob_l')} = {sql.year_month('dob_r')}", "same month"),
            cll.CustomLevel(sql.within_one_typo(sql.date_digits("dob_l"), sql.date_digits("dob_r")), DATE_TYPO_LEVEL),
            cll.CustomLevel("year(dob_l) = year(dob_r)", "same year"),
            cll.ElseLevel(),
        ],
    )
    comparisons = [name, dob, cl.ExactMatch("sex"), cl.ExactMatch("org"), address]
    comparisons += [_identifier(c, cl, cll, sql) if c in TYPO_IDENTIFIERS else cl.ExactMatch(c) for c in IDENTIFIERS]
    comparisons += [cl.ExactMatch(c) for c in EXACT_EVIDENCE]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[capped_blocking_rule(i, cols) if i in capped else block_on(*cols)
                                                for i, cols in enumerate(blocking)],
        retain_intermediate_calculation_columns=True,
    )


def _identifier(column: str, cl, cll, sql: ComparisonSql):
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=f"{column}: exact, swapped characters, one typo, else",
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column),
            cll.CustomLevel(sql.swapped(f"{column}_l", f"{column}_r"), SWAP_LEVEL),
            cll.CustomLevel(sql.within_one_typo(f"{column}_l", f"{column}_r"), TYPO_LEVEL),
            cll.ElseLevel(),
        ],
    )


@dataclass
class PersonModel:
    linker: object
    engine: DuckDBEngine  # or SparkEngine (resolution/engines.py): where Splink runs
    notes: list[str] = field(default_factory=list)  # what training had to go on, and what it skipped

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB database that holds the scored pairs, whichever engine scored them."""
        return self.engine.con

    def score(self, floor: float) -> str:
        """Scores every blocked pair at or above `floor`; returns the table (in `self.con`) holding
        them with each comparison's level (gamma_x) and match weight (mw_x)."""
        return self.engine.to_duckdb(self.linker.inference.predict(threshold_match_probability=floor))

    def score_pairs(self, left: pa.Table, right: pa.Table, name: str) -> str:
        """Every left record against every right record, no blocking (Splink's `score_pairs`);
        returns the table in `self.con`. `name`: unique per model (a name is registered once)."""
        rules = len(self.linker._settings_obj._blocking_rules_to_generate_predictions)
        sides = [self.engine.register(_with_unknown_block_sizes(t, rules), f"{name}_{side}")
                 for t, side in ((left, "l"), (right, "r"))]
        return self.engine.to_duckdb(self.linker.inference.score_pairs(*sides))

    def predict(self, threshold: float, batch_rows: int = 100_000, scored: str | None = None) -> Iterator[dict]:
        """Scored pairs at or above `threshold`, strongest first, with the match weight of every
        comparison; streamed in batches so that millions of pairs never sit in Python at once.
        `scored`: a table from `score` with a floor at or below the threshold, to reuse."""
        table = scored or self.score(threshold)
        names = [r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()]
        # mw_x: the match weight of comparison x, plus its term-frequency adjustment where there is one
        weights = [f"{n}{' + mw_tf_adj_' + n[3:] if 'mw_tf_adj_' + n[3:] in names else ''} AS {n}"
                   for n in names if n.startswith("mw_") and not n.startswith("mw_tf_adj_")]
        cols = ", ".join(["unique_id_l", "unique_id_r", "match_weight", "match_probability", *weights])
        reader = self.con.sql(f"""SELECT {cols} FROM {table} WHERE match_probability >= {float(threshold)!r}
            ORDER BY match_probability DESC, unique_id_l, unique_id_r""").to_arrow_reader(batch_rows)
        for batch in reader:
            yield from batch.to_pylist()

    def name_weights(self):
        """NameWeights for mentions: m of the exact name level and of the pinyin-key level."""
        from resolution.entity_evidence import NameWeights

        for comparison in self.linker._settings_obj.comparisons:
            if comparison.output_column_name == "name":
                levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
                exact, key = levels[0], levels[1]
                if all(isinstance(v, float) and v > 0 for v in (exact.m_probability, key.m_probability)):
                    return NameWeights(exact.m_probability, key.m_probability)
        return NameWeights()

    def disagreement_weights(self, columns: tuple[str, ...]) -> dict[str, float]:
        """The match weight of each comparison's last level (the values differ), for `columns`."""
        import math

        out = {}
        for comparison in self.linker._settings_obj.comparisons:
            if comparison.output_column_name in columns:
                level = comparison.comparison_levels[-1]
                m, u = level.m_probability, level.u_probability
                if isinstance(m, float) and isinstance(u, float) and m > 0 and u > 0:
                    out[comparison.output_column_name] = math.log2(m / u)
        return out

    def save(self, path: Path) -> None:
        self.linker.misc.save_model_to_json(str(path), overwrite=True)

    def close(self) -> None:
        self.engine.close()


# Evidence columns reported to the user (column -> label), in the order they are listed.
EVIDENCE_LABELS = {"name": "name 姓名", "dob": "birth date 出生日期", "sex": "sex 性别", "org": "organisation 单位",
                   "id_number": "ID number 身份证号", "passport_no": "passport 护照号", "staff_no": "staff no. 工号",
                   "student_no": "student no. 学号", "email": "e-mail 邮箱", "bank_account": "bank account 银行账号",
                   "address": "address 住址",
                   "postcode": "postcode 邮编"}
MIN_EM_PAIRS = 10  # fewer blocked pairs than this teach EM nothing but noise
# Expectation maximisation: pass 1 holds name and birth date fixed and learns the rest; pass 2 is
# blocked on the strongest identifier there is, so that name and birth date are learned too.
EM_PASSES = ((("pinyin_key", "dob"),),
             (("id_number",), ("passport_no",), ("staff_no",), ("student_no",), ("email",), ("dob",)))


@dataclass
class Evidence:
    """What the records offer: how many there are and how many carry each kind of evidence."""

    records: int
    present: dict[str, int]

    def describe(self) -> str:
        held = [f"{EVIDENCE_LABELS[c]} {n}" for c, n in self.present.items() if n]
        missing = [EVIDENCE_LABELS[c] for c, n in self.present.items() if not n]
        text = f"{self.records} person records; evidence 证据: " + (", ".join(held) or "none")
        return text + (f"; absent 缺失: {', '.join(missing)}" if missing else "")


def survey(con: duckdb.DuckDBPyConnection, table: str) -> Evidence:
    counts = con.execute(f"SELECT count(*), {', '.join(f'count({c})' for c in EVIDENCE_LABELS)} FROM {table}"
                         ).fetchall()[0]
    return Evidence(counts[0], dict(zip(EVIDENCE_LABELS, counts[1:], strict=True)))


def blocked_pairs(con: duckdb.DuckDBPyConnection, table: str, cols: tuple[str, ...]) -> int:
    """How many pairs a blocking on `cols` (all non-null and equal) would compare."""
    return sum(capped_pairs(con, table, cols))


def capped_pairs(con: duckdb.DuckDBPyConnection, table: str, cols: tuple[str, ...]) -> tuple[int, int]:
    """The pairs a blocking on `cols` compares in blocks of at most MAX_BLOCK records, and those it
    leaves out in larger blocks."""
    where = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    kept, left_out = con.execute(f"""SELECT sum(n * (n - 1) / 2) FILTER (WHERE n <= {MAX_BLOCK}),
                                            sum(n * (n - 1) / 2) FILTER (WHERE n > {MAX_BLOCK}) FROM (
        SELECT count(*) AS n FROM {table} WHERE {where} GROUP BY {', '.join(cols)})""").fetchall()[0]
    return int(kept or 0), int(left_out or 0)


def block_size_column(rule: int) -> str:
    return f"block_size_{rule}"


def with_block_sizes(con: duckdb.DuckDBPyConnection, table: str, blocking: list[tuple[str, ...]],
                     capped: set[int]) -> pa.Table:
    """The records with, per capped blocking rule, the size of the block each record falls in."""
    if not capped:
        return con.sql(f"SELECT * FROM {table}").to_arrow_table()
    sizes = ", ".join(f"count(*) OVER (PARTITION BY {', '.join(blocking[i])}) AS {block_size_column(i)}"
                      for i in sorted(capped))
    return con.sql(f"SELECT *, {sizes} FROM {table}").to_arrow_table()


def _with_unknown_block_sizes(records: pa.Table, rules: int) -> pa.Table:
    """Records scored without blocking still pass through Splink's blocking rules (to name the rule
    that found each pair): their block sizes are unknown."""
    for rule in range(rules):
        if block_size_column(rule) not in records.column_names:
            records = records.append_column(block_size_column(rule), pa.nulls(records.num_rows, pa.int64()))
    return records


def capped_blocking_rule(rule: int, cols: tuple[str, ...]):
    """Splink's rule for blocking `rule` on `cols`, leaving out blocks over MAX_BLOCK records (the
    records carry their block sizes: with_block_sizes); plain SQL, the same in every dialect."""
    from splink.blocking_rule_library import And, CustomRule, block_on

    return And(block_on(*cols), CustomRule(f"l.{block_size_column(rule)} <= {MAX_BLOCK}"))


def choose_blocking(con: duckdb.DuckDBPyConnection, table: str, records: int
                    ) -> tuple[list[tuple[str, ...]], set[int], list[str]]:
    """The blocking rules for `table`'s records, which of them (by position) leave out their blocks
    over MAX_BLOCK records, and notes on what was left out:

    - the name-key blockings, always, capped when one pairs more than BROAD_PAIRS_PER_RECORD per
      record (name + sex at 1.5 M records);
    - each typo blocking while it pairs at most TYPO_PAIRS_PER_RECORD per record, capped if that
      is what it takes;
    - the broad blockings, uncapped, while together they stay within BROAD_PAIRS_PER_RECORD."""
    counted: dict[tuple[str, ...], tuple[int, int]] = {}

    def pairs(cols: tuple[str, ...]) -> tuple[int, int]:
        if cols not in counted:
            counted[cols] = capped_pairs(con, table, cols)
        return counted[cols]

    blocking: list[tuple[str, ...]] = []
    capped: set[int] = set()
    notes: list[str] = []

    def use(cols: tuple[str, ...], cap: bool) -> None:
        if cols not in blocking:
            if cap:
                capped.add(len(blocking))
            blocking.append(cols)

    limit = BROAD_PAIRS_PER_RECORD * records
    for cols in BLOCKING_COLUMNS:
        if pairs(cols)[0]:
            use(cols, sum(pairs(cols)) > limit)
    if not blocking:
        use(NAME_ONLY_BLOCKING, sum(pairs(NAME_ONLY_BLOCKING)) > limit)
        notes.append("no birth date, organisation or sex to block with: candidate pairs share a name key")
    cap, too_broad = TYPO_PAIRS_PER_RECORD * records, []
    for cols in TYPO_BLOCKING:
        kept, left_out = pairs(cols)
        if 0 < kept + left_out <= cap:
            use(cols, False)
        elif 0 < kept <= cap:
            use(cols, True)
        elif kept:
            too_broad.append(f"{'+'.join(cols)} ({kept} pairs)")
    if too_broad:
        notes.append(f"typo blocking left out 未用的容错分块 (over {TYPO_PAIRS_PER_RECORD} pairs per record): "
                     + ", ".join(too_broad))
    budget, broad = limit, []
    for cols in BROAD_BLOCKING:  # in order, while all of them together stay within the budget
        total = sum(pairs(cols))
        if 0 < total <= budget and cols not in blocking:
            broad.append(cols)
            use(cols, False)
            budget -= total
    if broad:
        notes.append("broad blocking 宽松分块 (small enough to afford): " + ", ".join("+".join(c) for c in broad))
    skipped = sum(pairs(blocking[i])[1] for i in capped)
    if skipped:
        notes.append(f"blocks over {MAX_BLOCK} records left out 超大分块未比较: {skipped} pairs in "
                     + ", ".join("+".join(blocking[i]) for i in sorted(capped)))
    return blocking, capped, notes


def train(records: pa.Table, labels: list[tuple[str, str, bool]] | None = None, seed: int = 42,
          memory_limit: str = MODEL_MEMORY_LIMIT, engine=None) -> PersonModel:
    """Trains on the Person records (PERSON_INPUT_SQL's columns). `labels`: steward judgements
    (record, record, same?) used to estimate m where there are enough of them. `engine`: where
    Splink runs (resolution/engines.py), by default its own DuckDB database bounded by
    `memory_limit`; the model owns it from here and closes it with itself (or on failure).

    Never fails for want of evidence: a training step without data is skipped with a note (in
    `PersonModel.notes`), and the prior is never 0."""
    engine = engine or DuckDBEngine(memory_limit)
    try:
        return _train(engine, records, labels, seed)
    except BaseException:
        engine.close()
        raise


def _prepared(engine, records: pa.Table):
    """What training and a reused model both start from: the records with their sound keys and block
    sizes in the engine (`_survey` in its DuckDB, `person_records` where Splink runs), the evidence,
    and Splink's settings as this data calls for them (the blocking rules depend on the data)."""
    con = engine.con  # the local DuckDB: blocked-pair counts before Splink runs, wherever it runs
    records = with_sound_keys(records)
    con.register("_survey", records)
    evidence = survey(con, "_survey")
    notes = [evidence.describe()]
    blocking, capped, notes_ = choose_blocking(con, "_survey", evidence.records)
    notes += notes_
    records = with_block_sizes(con, "_survey", blocking, capped)
    df = engine.register(records, "person_records")
    settings = _settings(blocking, capped, evidence.records >= MIN_RECORDS_FOR_TF, engine.sql)
    return df, settings, evidence, notes


# What training learns, and the linker's own ID: left out when a saved model's settings are compared
# with this data's.
_LEARNED = ("m_probability", "u_probability", "probability_two_random_records_match", "linker_uid")


def _unlearned(settings: object) -> object:
    if isinstance(settings, dict):
        return {k: _unlearned(v) for k, v in settings.items() if k not in _LEARNED}
    if isinstance(settings, list):
        return [_unlearned(v) for v in settings]
    return settings


def reuse(records: pa.Table, saved: dict, engine) -> PersonModel | None:
    """The model a former resolve trained (`saved`: Splink's JSON of it), ready to score these
    records, when the settings this data calls for are the ones it was trained with (comparisons,
    levels, blocking rules, term frequencies; everything but what training learns); else None, and
    the engine is closed."""
    from splink import Linker

    try:
        df, settings, _, notes = _prepared(engine, records)
        fresh = Linker(df, settings, log_level=logging.ERROR).misc.save_model_to_json()
        if _unlearned(fresh) != _unlearned(saved):
            engine.close()
            return None
        engine.con.unregister("_survey")
        return PersonModel(Linker(df, saved, log_level=logging.ERROR), engine, notes)
    except BaseException:
        engine.close()
        raise


def _train(engine, records: pa.Table, labels: list[tuple[str, str, bool]] | None, seed: int) -> PersonModel:
    from splink import Linker, block_on
    from splink.internals.exceptions import SplinkException

    con = engine.con
    df, settings, evidence, notes = _prepared(engine, records)
    linker = Linker(df, settings, log_level=logging.ERROR)
    notes.append(_estimate_prior(linker, con, evidence, block_on))
    linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=seed,
                                                     num_chunks=engine.u_sampling_chunks)
    for candidates in EM_PASSES:
        usable = next((cols for cols in candidates if blocked_pairs(con, "_survey", cols) >= MIN_EM_PAIRS), None)
        if usable is None:
            notes.append(f"EM skipped 跳过: fewer than {MIN_EM_PAIRS} pairs share any of "
                         + " / ".join("+".join(c) for c in candidates))
            continue
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*usable),
                                                                               fix_u_probabilities=True)
        except SplinkException as exc:
            notes.append(f"EM blocked on {'+'.join(usable)} skipped 跳过: {exc}".splitlines()[0])
    con.unregister("_survey")
    untrained = _apply_prior_m(linker)
    if untrained:
        notes.append("m from prior knowledge 经验值 (no data to learn it from): " + ", ".join(untrained))
    _apply_m_floors(linker)
    _remove_matches_from_u(linker)
    same = [(a, b) for a, b, is_same in labels or [] if is_same]
    if len(same) >= MIN_LABELS_FOR_M:  # Splink reads every label row as a confirmed match
        table = pa.table({"source_dataset_l": ["person_records"] * len(same), "unique_id_l": [a for a, _ in same],
                          "source_dataset_r": ["person_records"] * len(same), "unique_id_r": [b for _, b in same]})
        linker.training.estimate_m_from_pairwise_labels(engine.register(table, "labels"))
    return PersonModel(linker, engine, notes)


# The prior: pairs that share a strong identifier (recall 0.8), else pairs with the same name and
# birth date; with neither, about one duplicate per record is assumed rather than none (a prior
# of 0 makes every match weight minus infinity).
# (Passports are left out: held by the few international records, the pairs sharing one say little
# about the share of matches among all pairs.)
PRIOR_RULES = ((("id_number",), ("staff_no",), ("student_no",)), (("name", "dob"),))
PRIOR_RECALL = 0.8


def _estimate_prior(linker, con, evidence: Evidence, block_on) -> str:
    settings = linker._settings_obj
    for rules in PRIOR_RULES:
        found = [cols for cols in rules if blocked_pairs(con, "_survey", cols)]
        if not found:
            continue
        try:
            linker.training.estimate_probability_two_random_records_match([block_on(*c) for c in found],
                                                                          recall=PRIOR_RECALL)
        except ValueError:  # more pairs share an identifier than a recall of 0.8 allows: tiny data
            settings._probability_two_random_records_match = 0.5
        prior = min(settings._probability_two_random_records_match, 0.5)
        settings._probability_two_random_records_match = prior
        return f"prior 先验 {prior:.3g} from pairs sharing " + " / ".join("+".join(c) for c in found)
    prior = min(1 / max(evidence.records, 2), 0.5)
    settings._probability_two_random_records_match = prior
    return (f"prior 先验 {prior:.3g} assumed (about one duplicate per record): no two records share an "
            "identifier, or a name and birth date")


# The least probability that a true match shows each level. EM on pairs that share an ID number
# learns that true matches never disagree on sex or college, which would make one typo or one
# renamed college veto a match (a weight of -300). Real records do disagree sometimes: a PhD's
# college is not the college that later hired them, and 5 % of colleges were renamed.
M_FLOORS = {"name": 0.005, "dob": 0.01, "sex": 0.01, "org": 0.15,
            "student_no": 0.2, "staff_no": 0.05,  # one person holds a student number per degree
            "passport_no": 0.05,  # a renewed passport has a new number
            "address": 0.05,  # people move
            "bank_account": 0.3}  # paid into another of their cards


# What a true match usually shows at each level (strongest first), for comparisons that no EM pass
# could learn: too few records, or a blocking that fixed the comparison. Splink's own default is
# flattened by the floors below into no evidence at all.
PRIOR_M = {"name": (0.75, 0.1, 0.04, 0.04, 0.03, 0.02, 0.02), "dob": (0.85, 0.05, 0.03, 0.03, 0.04),
           "sex": (0.97, 0.03), "org": (0.7, 0.3), "address": (0.5, 0.15, 0.1, 0.05, 0.02, 0.18),
           "id_number": (0.95, 0.05), "passport_no": (0.85, 0.02, 0.03, 0.1), "staff_no": (0.85, 0.04, 0.06, 0.05),
           "student_no": (0.55, 0.02, 0.03, 0.4), "email": (0.8, 0.2), "bank_account": (0.8, 0.2)}


def _apply_prior_m(linker) -> list[str]:
    """Sets PRIOR_M on every comparison that training left without m; returns their names."""
    untrained = []
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        prior = PRIOR_M.get(comparison.output_column_name)
        if prior is None or len(prior) != len(levels) or any(lv._m_probability is not None for lv in levels):
            continue
        for lv, m in zip(levels, prior, strict=True):
            lv.m_probability = m
        untrained.append(comparison.output_column_name)
    return untrained


TYPO_M_FLOOR = 0.001


def _trained_m(level) -> float:
    """The level's m, 0 when training left none or never saw the level among matches."""
    m = getattr(level, "_m_probability", None)
    return m if isinstance(m, float) else 0.0


def _apply_m_floors(linker) -> None:
    for comparison in linker._settings_obj.comparisons:
        floor = M_FLOORS.get(comparison.output_column_name)
        if floor is None:
            continue
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        # a typo level is evidence for a match, never against one: it needs only a token floor
        ms = [max(_trained_m(lv), TYPO_M_FLOOR if lv.label_for_charts in (SWAP_LEVEL, TYPO_LEVEL, DATE_TYPO_LEVEL) else floor)
              for lv in levels]
        total = sum(ms)
        for lv, m in zip(levels, ms, strict=True):
            lv.m_probability = m / total


def _remove_matches_from_u(linker) -> None:
    """u is measured on random pairs, and a share `prior` of random pairs are matches, which show
    level x with probability m: observed u = prior * m + (1 - prior) * u. Negligible in a large
    population; in twenty records one true pair in the sample makes an exact name look common."""
    prior = linker._settings_obj._probability_two_random_records_match
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        # a level random pairs never showed keeps Splink's 'not observed'
        measured = [lv for lv in levels if isinstance(lv._u_probability, float) and lv.m_probability is not None]
        if len(measured) < 2:
            continue
        observed = [lv._u_probability for lv in measured]
        corrected = [max((u - prior * lv.m_probability) / (1 - prior), u * 0.1) for u, lv in zip(observed, measured,
                                                                                                 strict=True)]
        scale = sum(observed) / sum(corrected)
        for lv, u in zip(measured, corrected, strict=True):
            lv.u_probability = u * scale


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
