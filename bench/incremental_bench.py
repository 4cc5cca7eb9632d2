"""An incremental run (issue 14): 1 % of the records of every export changed, then the whole
`campus-kg run` again on the same workspace, beside the full run that built it.

A generated university (seed 42) is run through the real command line three times, each run a
process of its own, timed whole, with its peak RSS: the full run into an empty workspace; a rerun
with nothing changed (what a nightly load costs when the exports are the same); and a rerun after
1 % of the rows of every export had their last cell changed (a new phone number, a new amount, a
typo: what a night's changes look like). Issue 14's goal: the incremental run in ≤ 10 % of the
full run's time.

    .venv/bin/python bench/incremental_bench.py [--persons 20000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import table, write_section  # noqa: E402

TITLE = "Incremental run: 1 % of records changed (issue 14)"
CLI = str(Path(sys.executable).with_name("campus-kg"))
GOAL_SHARE = 0.10


def timed_run(mapping: Path, ws: Path) -> dict:
    """`campus-kg run` as a process of its own: wall seconds, peak RSS and what it printed."""
    env = {**os.environ, "COLUMNS": "200"}
    started = time.perf_counter()
    proc = subprocess.Popen([CLI, "run", "--mapping", str(mapping), "--workspace", str(ws)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"campus-kg run failed ({status}):\n{output[-4000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "output": output}


def change_one_percent(mapping: Path, seed: int = 3) -> int:
    """Changes the last cell of about 1 % of the rows of every export the mapping reads, in the
    export's own encoding and delimiter; returns how many rows changed."""
    rng = random.Random(seed)
    changed = 0
    for source in yaml.safe_load(mapping.read_text(encoding="utf-8"))["sources"]:
        path = mapping.parent / source["path"]
        encoding = source.get("encoding", "utf-8")
        delimiter = "\t" if source.get("format") == "tsv" else ","
        text = path.read_bytes().decode(encoding)
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        for row in rows[1:]:
            if row and rng.random() < 0.01:
                row[-1] = row[-1] + "0" if row[-1] else "1"
                changed += 1
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
        path.write_bytes(out.getvalue().encode(encoding))
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="campus-kg-incremental-") as tmp:
        sources, ws = Path(tmp) / "sources", Path(tmp) / "ws"
        subprocess.run([CLI, "generate", "--out", str(sources), "--persons", str(args.persons), "--seed", "42"],
                       check=True, capture_output=True)
        mapping = sources / "mapping.yaml"
        print("full run …", flush=True)
        full = timed_run(mapping, ws)
        print(f"  {full['seconds']:.1f} s", flush=True)
        records = _records(ws)
        print("rerun, nothing changed …", flush=True)
        same = timed_run(mapping, ws)
        print(f"  {same['seconds']:.1f} s", flush=True)
        changed = change_one_percent(mapping)
        print(f"rerun, {changed:,} rows changed …", flush=True)
        incremental = timed_run(mapping, ws)
        print(f"  {incremental['seconds']:.1f} s", flush=True)
    rows = [[label, f"{r['seconds']:.1f}", f"{r['seconds'] / full['seconds']:.2f}", f"{r['peak_rss_mb']:,.0f}",
             _stages(r["output"])]
            for label, r in (("full run (empty workspace)", full), ("rerun, nothing changed", same),
                             (f"rerun, 1 % changed ({changed:,} rows)", incremental))]
    share = incremental["seconds"] / full["seconds"]
    body = "\n".join([
        f"A generated university of {args.persons:,} persons ({records} records read per run), seed 42; each run "
        "is `campus-kg run --mapping sources/mapping.yaml --workspace ws`, a process of its own.", "",
        table(["run", "seconds", "share of the full run", "peak RSS MB", "what it did"], rows), "",
        f"Issue 14's goal, 1 % changed → the whole run in ≤ {GOAL_SHARE:.0%} of the full run: "
        f"{share:.0%} — **{'met' if share <= GOAL_SHARE else 'NOT met'}**.", FINDINGS])
    write_section(TITLE, f".venv/bin/python bench/incremental_bench.py --persons {args.persons}", body)
    print(body)


def _records(ws: Path) -> str:
    import duckdb

    con = duckdb.connect(str(ws / "lakehouse.duckdb"), read_only=True)
    try:
        return f"{con.execute('SELECT count(*) FROM dwd_record').fetchall()[0][0]:,}"
    finally:
        con.close()


def _stages(output: str) -> str:
    """The run's own account of its steps: what ingest found changed, whether it resolved and built."""
    steps = [line.strip() for line in output.splitlines() if line.startswith("time by step")]
    keep = [line.strip() for line in output.splitlines()
            if any(k in line for k in ("nothing changed", "patch", "full build", "全量构建", "增量"))]
    return "; ".join(steps + [k[:160] for k in keep]).replace("|", "/") or "—"


FINDINGS = """
Reading (2026-12-02, first run of this bench): the run after 1 % of the rows changed took as long as
the full run (79 s against 72 s), so the goal of 10 % is far off, and the run with nothing changed
still took 35 % of it. Where the time goes: ingest reads, standardises and compares every row of
every export whatever changed (the nothing-changed rerun is that cost alone: 25 s at 89 k records;
with 1 % of the rows of every file changed every file is new), resolution reruns whole (training,
scoring, every cluster), and the graph is patched rather than rebuilt (3,428 of 89,204 source
records loaded again) but the patch cost about what a full build does at this size. An incremental
run within 10 % needs all three to work on what changed: ingest to skip unchanged rows before
standardising them (a row hash against the last load, in DuckDB, before Python sees the row);
resolution to keep the trained model and re-score only the pairs and clusters the changed records
touch; the patch to cost in proportion to the records it reloads. None of the three is built.

Reading (2026-12-02, third session; `campus-kg run` now prints its time by step): full 45 s
(ingest 14, resolve 11, graph build 18), nothing changed 23 s (ingest 20 s, more than the first run's 14 s; not
profiled: presumably the snapshot, comparison and statement history against what is there), 1 %
changed 65 s (ingest 18, resolve 15, patch 29 s). The machine was quieter than at the first
reading (72 s full). The patch costs 1.6× a full build: a py-spy profile of that
`campus-kg build-graph` (on a workspace made the same way) puts 39 % of it in writing the person
records again, one by one in Python and after the graph load, not beside it as a full build does.
And it writes nearly every person's, because `last_updated` (when the chosen value was last seen in
its source) moves for every person with a record in a source that was loaded again, and 1 % of the
rows of every export changed. A patch in proportion to the change needs `last_seen` kept per source
beside the records, not inside each, or the records written beside the graph load as in a full build.
The second is done since (same session): on a copy of such a workspace, that `build-graph` took
28.0 s before and 21.8 s after (one run each; peak RSS 1.40 → 1.72 GB, a second DuckDB connection);
the first, and ingest and resolution that work on what changed, are not.

Reading (2026-12-02, fourth session; the table above is this session's last run, on a quieter
machine than the runs before it): full 37 s, nothing changed 3.3 s (was 23 s), 1 % changed 25 s
(was 65 s; 67 % of the full run; 31 s = 64 % against a 48 s full run earlier in the session). Three
changes, each measured by a run of this bench after it: (1) ingest skips a row whose content hash is its record's
from the last load while the source is standardised alike (`source_fingerprint`; tests/
test_ingest_unchanged.py holds the result to the row-by-row reference path): nothing-changed ingest
20 s → 3.5 s, 1 %-changed ingest 18 s → 5.6 s; (2) a stored person record holds a stand-in per
source for `last_updated`, replaced when it is read, so a reload no longer rewrites every person's
record: the patch 20 s → 14.6 s; (3) a resolve reuses the saved Person model while ≤ 5 % of the
Person records changed since its training (`resolution_retrain_share`): resolve 14–16 s → 9.3 s.
What is left (py-spy of the patch's `build-graph`): loading the scoped nodes and relationships
into Ladybug, for the graph and the analyst projection, about 40 % of it, deleting the scope 13 %,
moving last_seen 8 %; and a resolve that still scores, clusters and survives every record.
"""


if __name__ == "__main__":
    main()
