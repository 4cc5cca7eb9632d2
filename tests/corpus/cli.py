"""Runs the real `campus-kg` command line on a corpus and reads what it prints (shared by
tests/test_independent_corpus.py and bench/corpus_bench.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLI = str(Path(sys.executable).with_name("campus-kg"))
# Rich draws tables to the terminal's width; a wide fake terminal keeps every column on one line.
ENV = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass
class Ran:
    args: list[str]
    returncode: int
    output: str
    seconds: float


def campus_kg(*args: str, timeout: float = 3600) -> Ran:
    started = time.perf_counter()
    proc = subprocess.run([CLI, *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    return Ran(list(args), proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - started)


def ingest_counts(output: str) -> dict[str, tuple[int, int, int]]:
    """source -> (read, loaded, quarantined) from the table `campus-kg ingest` / `run` prints."""
    out = {}
    for m in re.finditer(r"^│\s*([a-z0-9_]+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", output, re.M):
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
    return out


def evaluation(output: str) -> dict:
    """Pairwise / B-cubed per entity type, the hard-case rows and the mention line of `campus-kg evaluate`."""
    out: dict = {"entity_types": {}, "hard_cases": {}, "mentions": None}
    number = r"\s*([0-9.]+)\s*│"
    for m in re.finditer(rf"^│\s*([A-Z][a-z]+)\s*│\s*(\d+)\s*│{number * 6}", output, re.M):
        p, r, f1, bp, br, bf1 = (float(m.group(i)) for i in range(3, 9))
        out["entity_types"][m.group(1)] = {"records": int(m.group(2)), "precision": p, "recall": r, "f1": f1,
                                           "b3_precision": bp, "b3_recall": br, "b3_f1": bf1}
    for m in re.finditer(r"^│\s*(\d+)\s*│\s*((?:recall|precision):[^│]+?)\s*│\s*(\d+)\s*│\s*([0-9.]+)\s*│", output, re.M):
        out["hard_cases"][m.group(2)] = {"pairs": int(m.group(1)), "correct": int(m.group(3)), "rate": float(m.group(4))}
    m = re.search(r"person mentions 人员提及: (\d+) \((\d+) internal, (\d+) external\); linked correctly (\d+), wrongly "
                  r"(\d+); precision ([0-9.]+), recall ([0-9.]+); external kept external (\d+)/(\d+)", output)
    if m:
        out["mentions"] = {"mentions": int(m.group(1)), "internal": int(m.group(2)), "external": int(m.group(3)),
                           "linked_correctly": int(m.group(4)), "linked_wrongly": int(m.group(5)),
                           "precision": float(m.group(6)), "recall": float(m.group(7)),
                           "external_kept_external": int(m.group(8))}
    return out


def review_items(output: str) -> int | None:
    """`N pairs for review` from the resolution summary of `campus-kg run` / `resolve`."""
    m = re.search(r"(\d+) pairs for\s+review", output)
    return int(m.group(1)) if m else None
