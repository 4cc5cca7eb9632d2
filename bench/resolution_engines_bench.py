"""Resolution on DuckDB and on Spark (`local[2]`): time, peak RSS (the JVM included), pairs scored,
agreement, and how each engine's cost grows from 68 k to 340 k generated persons (≈ 0.3 M and
1.5 M person records).

Each engine resolves its own copy of the same ingested lakehouse in its own process (the whole
`resolve`: identifiers, the Person model, clustering, entity passes, mentions, survivorship).
Peak RSS is sampled over the process and all its descendants (Spark's driver JVM is a child of
the Python process), summed. Pairs scored: the candidate pairs the blocking produces (the same for
both engines: the model compares exactly these), counted in DuckDB from the saved model's blocking
rules. Growth: the cost at the largest size over the cost at the smallest, beside the growth in
pairs — linear in pairs means the two ratios are about equal.

    .venv/bin/python bench/resolution_engines_bench.py [--sizes 68000 340000] [--spark-master local[2]]

With the default sizes it writes its section of bench/RESULTS.md; with other sizes (a quick check:
`--sizes 300 600`) it only prints.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import ingested_workspace, table, write_section  # noqa: E402

DEFAULT_SIZES = (68_000, 340_000)
ENGINES = ("duckdb", "spark")


def child(engine: str, lakehouse: Path, spark_master: str, count_pairs: bool) -> dict:
    from ingest.lakehouse import Lakehouse
    from resolution.person_linkage import LinkageOptions
    from resolution.run import resolve

    model_path = lakehouse.with_name("person.json")
    started = time.perf_counter()
    with Lakehouse(lakehouse) as lake:
        result = resolve(lake, LinkageOptions(model_path=model_path, engine=engine, spark_master=spark_master))
        seconds = time.perf_counter() - started
        kept = lake.con.execute("SELECT count(*) FROM res_pair_score").fetchall()[0][0]
        lake.con.execute(f"""COPY (SELECT member_id, master_id FROM res_link WHERE entity_type = 'Person')
                             TO '{lakehouse.with_name("links.parquet")}' (FORMAT parquet)""")
        candidates = candidate_pairs(lake.con, model_path) if count_pairs else None
    return {"seconds": seconds, "records": result.records.get("Person", 0), "pairs_kept": kept,
            "candidate_pairs": candidates, "probabilistic_links": result.probabilistic_links,
            "review_items": result.review_items, "stage_seconds": result.stages.seconds,
            "stage_peak_rss_mb": result.stages.peak_rss_mb}


def candidate_pairs(con, model_path: Path) -> int:
    """Distinct record pairs the saved model's blocking rules produce (Splink scores each pair once).
    A rule that caps its block size (`l.block_size_N <= 50`) gets that column the way training
    computes it: the size of the record's block on the columns the rule equates."""
    import re

    from resolution.person_model import PERSON_INPUT_SQL, with_sound_keys

    rules = [r["blocking_rule"] for r in json.loads(model_path.read_text())["blocking_rules_to_generate_predictions"]]
    con.register("_bench_input", with_sound_keys(con.sql(PERSON_INPUT_SQL).to_arrow_table()))
    sizes = {}
    for rule in rules:
        for column in re.findall(r"block_size_\d+", rule):
            equated = re.findall(r'l\."?(\w+)"? = r\."?\1"?', rule)
            sizes[column] = f"count(*) OVER (PARTITION BY {', '.join(equated)}) AS {column}"
    con.execute("CREATE OR REPLACE TEMP TABLE _bench_people AS SELECT *"
                + "".join(f", {s}" for s in sizes.values()) + " FROM _bench_input")
    con.unregister("_bench_input")
    pairs = " UNION ".join(f"SELECT l.unique_id AS a, r.unique_id AS b FROM _bench_people l JOIN _bench_people r "
                           f"ON ({rule}) AND l.unique_id < r.unique_id" for rule in rules)
    # distinct pairs across rules: millions at 68 k persons, beyond the lakehouse's ingest memory limit
    con.execute("SET memory_limit = '4GB'")
    n = con.execute(f"SELECT count(*) FROM ({pairs})").fetchall()[0][0]
    con.execute("DROP TABLE _bench_people")
    return n


def tree_rss_mb(pid: int) -> float:
    """RSS of `pid` and every descendant, summed (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total / 2**20


def measured(args: list[str], out: Path) -> dict:
    """Runs this script's child in its own process; peak RSS of its process tree sampled every 0.2 s."""
    proc = subprocess.Popen([sys.executable, __file__, *args, "--out", str(out)])
    peak = [0.0]
    loads: list[float] = []

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            loads.append(os.getloadavg()[0])
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    status = proc.wait()
    sampler.join()
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {status}")
    # the machine's 1-minute load average over the run: about 2 is the run itself on 2 cores; more
    # means something else shared the machine and the time is inflated
    return {**json.loads(out.read_text()), "peak_rss_mb": peak[0], "load": sum(loads) / max(len(loads), 1)}


def agreement(a: Path, b: Path) -> tuple[float, int]:
    """Pairwise agreement of two engines' master entities over the pairs either puts in one entity
    (1.0: identical), and the number of pairs they disagree on; counted in DuckDB."""
    import duckdb

    def together(path: Path) -> str:
        return (f"SELECT x.member_id AS a, y.member_id AS b FROM read_parquet('{path}') x "
                f"JOIN read_parquet('{path}') y ON x.master_id = y.master_id AND x.member_id < y.member_id")

    con = duckdb.connect()
    both, either = con.execute(f"""WITH p AS ({together(a)}), q AS ({together(b)})
        SELECT (SELECT count(*) FROM (SELECT * FROM p INTERSECT SELECT * FROM q)),
               (SELECT count(*) FROM (SELECT * FROM p UNION SELECT * FROM q))""").fetchall()[0]
    return (both / either if either else 1.0), either - both


# The stages that run on the engine (Splink's training and scoring), and those that run in the
# campus-kg process over the scored pairs whichever engine scored them.
ENGINE_STAGES = ("model training 模型训练", "pair scoring 配对打分")
AFTER_HAND_BACK = ("clustering 聚类", "record-to-entity matching 记录对实体匹配", "master IDs and links 主ID与链接",
                   "mentions 提及", "survivorship 存活规则")


def growth_by_part(results: dict[tuple[int, str], dict], small: int, large: int) -> str:
    """Where each engine's growth comes from: the pair work on the engine against the growth in
    pairs, and the work after the hand-back (clustering and what follows, in DuckDB and Python)
    against the growth in records, with that process's peak RSS per million person records."""
    def part(r: dict, stages) -> float:
        return sum(r["stage_seconds"].get(s, 0.0) for s in stages)

    rows = []
    for engine in ENGINES:
        a, b = results[small, engine], results[large, engine]
        rss_a, rss_b = max(a["stage_peak_rss_mb"].values()), max(b["stage_peak_rss_mb"].values())
        per_million = (rss_b - rss_a) / ((b["records"] - a["records"]) / 1e6)
        rows.append([engine, f"{part(a, ENGINE_STAGES):.1f} → {part(b, ENGINE_STAGES):.1f} s "
                             f"({part(b, ENGINE_STAGES) / part(a, ENGINE_STAGES):.2f}×)",
                     f"{part(a, AFTER_HAND_BACK):.1f} → {part(b, AFTER_HAND_BACK):.1f} s "
                     f"({part(b, AFTER_HAND_BACK) / part(a, AFTER_HAND_BACK):.2f}×)",
                     f"{rss_a:,.0f} → {rss_b:,.0f} MB (+{per_million:,.0f} MB per million records)"])
    return ("Growth by part: the pair work on the engine (training and scoring) and the work after the "
            "hand-back (clustering, record-to-entity matching, master IDs, mentions, survivorship; DuckDB "
            "and Python on this machine whichever engine scored):\n\n"
            + table(["engine", "training + scoring", "after the hand-back", "campus-kg process peak RSS (no JVM)"],
                    rows))


def stage_table(results: dict[tuple[int, str], dict], spark_master: str) -> str:
    """Seconds per resolve stage for each run, and the campus-kg process's own peak RSS (the Python
    process with its DuckDB, without the Spark JVM) at the end of each: what runs after the pairs
    come back (clustering, record-to-entity matching, mentions, survivorship) is the same code on
    both engines, so this is where one machine's memory would run out first."""
    runs = list(results)
    stages = list(dict.fromkeys(s for r in results.values() for s in r["stage_seconds"]))
    header = ["stage"] + [f"{size:,} {engine if engine == 'duckdb' else f'spark ({spark_master})'}: s / process peak MB"
                          for size, engine in runs]
    rows = [[stage] + [f"{results[run]['stage_seconds'].get(stage, 0):.1f} / "
                       f"{results[run]['stage_peak_rss_mb'].get(stage, 0):,.0f}" for run in runs] for stage in stages]
    return ("Time by stage (`ResolveResult.stages`, wall seconds / the campus-kg process's peak RSS so far, "
            "JVM excluded):\n\n" + table(header, rows))


def prepared_lakehouse(root: Path, persons: int) -> Path:
    """The generated university of `persons`, ingested once and shared with bench/resolution_bench.py
    (the same folder and seed)."""
    return ingested_workspace(root, persons).lakehouse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--child")
    parser.add_argument("--lakehouse", type=Path)
    parser.add_argument("--count-pairs", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        args.out.write_text(json.dumps(child(args.child, args.lakehouse, args.spark_master, args.count_pairs)))
        return

    results: dict[tuple[int, str], dict] = {}
    agreements: dict[int, tuple[float, int]] = {}
    for size in sorted(args.sizes):
        root = args.data_dir / f"resolution-{size}"
        source = prepared_lakehouse(root, size)
        for engine in ENGINES:
            work = root / "engines" / engine
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            shutil.copy(source, work / "lakehouse.duckdb")
            print(f"{size:,} persons: resolving on {engine} …", flush=True)
            r = measured(["--child", engine, "--lakehouse", str(work / "lakehouse.duckdb"),
                          "--spark-master", args.spark_master, *(["--count-pairs"] if engine == "duckdb" else [])],
                         work / "result.json")
            results[size, engine] = r
            print(f"  {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
        candidates = results[size, "duckdb"]["candidate_pairs"]
        for engine in ENGINES:
            results[size, engine]["candidate_pairs"] = candidates
        agreements[size] = agreement(*(root / "engines" / e / "links.parquet" for e in ENGINES))

    rows = []
    for (size, engine), r in results.items():
        share, differ = agreements[size]
        rows.append([f"{size:,}", f"{r['records']:,}", f"{engine} ({args.spark_master})" if engine == "spark" else engine,
                     f"{r['seconds']:.1f}", f"{r['peak_rss_mb']:,.0f}", f"{r['candidate_pairs']:,}",
                     f"{r['pairs_kept']:,}", f"{r['seconds'] / results[size, 'duckdb']['seconds']:.1f}×",
                     f"{share:.5f} ({differ} pairs)", f"{r['load']:.1f}"])
    body = table(["persons", "Person records", "engine", "seconds", "peak RSS MB (JVM incl.)", "pairs scored",
                  "pairs kept (p ≥ 0.01)", "time vs DuckDB", "agreement with DuckDB", "load average"], rows)
    small, large = min(args.sizes), max(args.sizes)
    if small != large:
        growth = []
        pairs_growth = results[large, "duckdb"]["candidate_pairs"] / max(results[small, "duckdb"]["candidate_pairs"], 1)
        for engine in ENGINES:
            a, b = results[small, engine], results[large, engine]
            growth.append([engine, f"{b['seconds'] / a['seconds']:.2f}", f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}",
                           f"{pairs_growth:.2f}", f"{b['records'] / a['records']:.2f}"])
        body += f"\n\nGrowth from {small:,} to {large:,} persons (ratio of the larger run to the smaller):\n\n"
        body += table(["engine", "time", "peak RSS", "pairs scored", "records"], growth)
        body += "\n\n" + growth_by_part(results, small, large)
    body += "\n\n" + stage_table(results, args.spark_master)
    print(body)
    if sorted(args.sizes) == sorted(DEFAULT_SIZES):
        memory = os.environ.get("SPARK_DRIVER_MEMORY")  # the driver's heap: local[n] does all its work there
        write_section("Resolution engines: DuckDB and Spark",
                      (f"SPARK_DRIVER_MEMORY={memory} " if memory else "")
                      + f".venv/bin/python bench/resolution_engines_bench.py --spark-master {args.spark_master}", body)


if __name__ == "__main__":
    main()
