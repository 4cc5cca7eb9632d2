"""Where the product goes wrong on the independent corpus: the links `campus-kg export links` wrote,
against the corpus's truth, broken down by pair of sources and by hard case (truth_cases.csv).

    .venv/bin/python -m tests.corpus.analyse CORPUS_DIR LINKS_CSV [--examples 5]
"""

from __future__ import annotations

import argparse
import csv
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import yaml


@dataclass
class Breakdown:
    true_pairs: Counter = field(default_factory=Counter)     # label -> true pairs
    found_pairs: Counter = field(default_factory=Counter)    # label -> true pairs in one master
    false_pairs: Counter = field(default_factory=Counter)    # label -> pairs of different people in one master
    missed_examples: dict = field(default_factory=lambda: defaultdict(list))
    false_examples: dict = field(default_factory=lambda: defaultdict(list))

    def recall(self, label: str) -> float:
        return self.found_pairs[label] / self.true_pairs[label] if self.true_pairs[label] else 1.0


def _read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def analyse(corpus_dir: Path, links_csv: Path, examples: int = 5) -> tuple[Breakdown, Breakdown]:
    """(by source pair, by hard case). A pair counts for a hard case when either record has it."""
    mapping = yaml.safe_load((corpus_dir / "mapping.yaml").read_text(encoding="utf-8"))
    source_of = {(s["system"], s["table"]): s["name"] for s in mapping["sources"]}
    master = {(source_of[(r["system"], r["table"])], r["record_key"]): r["master_id"]
              for r in _read_csv(links_csv) if r["entity_type"] == "Person"}
    truth = {(r["source"], r["record_key"]): r["entity_id"] for r in _read_csv(corpus_dir / "truth_persons.csv")}
    cases = {(r["source"], r["record_key"]): [c for c in r["cases"].split(";") if c]
             for r in _read_csv(corpus_dir / "truth_cases.csv")}
    names = _names(corpus_dir, mapping)
    by_pair, by_case = Breakdown(), Breakdown()

    def count(a, b, found: bool | None) -> None:
        pair_label = " + ".join(sorted((a[0], b[0])))
        tags = sorted(set(cases.get(a, []) + cases.get(b, [])))
        labels = [(by_pair, pair_label)] + [(by_case, c) for c in tags]
        if not any(t.startswith("name_only") or t == "identifier_typo" for t in tags):
            labels.append((by_case, "(all pairs where both records carry a correct identifier)"))
        example = f"{a[0]}:{a[1]} {names.get(a, '')!r} / {b[0]}:{b[1]} {names.get(b, '')!r}"
        for board, label in labels:
            if found is None:
                board.false_pairs[label] += 1
                if len(board.false_examples[label]) < examples:
                    board.false_examples[label].append(example)
                continue
            board.true_pairs[label] += 1
            board.found_pairs[label] += found
            if not found and len(board.missed_examples[label]) < examples:
                board.missed_examples[label].append(example)

    by_truth, by_master = defaultdict(list), defaultdict(list)
    for rec, entity in sorted(truth.items()):
        if rec in master:
            by_truth[entity].append(rec)
            by_master[master[rec]].append(rec)
    for recs in by_truth.values():
        for a, b in combinations(recs, 2):
            count(a, b, master[a] == master[b])
    for recs in by_master.values():
        for a, b in combinations(recs, 2):
            if truth[a] != truth[b]:
                count(a, b, None)
    return by_pair, by_case


def _names(corpus_dir: Path, mapping: dict) -> dict:
    """(source, record_key) -> the name as written, for examples."""
    out = {}
    for s in mapping["sources"]:
        if s["entity_type"] != "Person":
            continue
        name_col = next((c for c, r in s["fields"].items() if isinstance(r, dict) and r["property"] in ("name", "family_name")), None)
        enc = {"utf-8": "utf-8-sig"}.get(s["encoding"], s["encoding"])
        with (corpus_dir / s["path"]).open(encoding=enc, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t" if s["format"] == "tsv" else ","):
                key = "|".join(unicodedata.normalize("NFKC", row[k]).strip() for k in s["record_key"])
                out[(s["name"], key)] = " ".join(filter(None, [row.get(name_col, ""), row.get("Given name", "")]))
    return out


def report(by_pair: Breakdown, by_case: Breakdown, top: int = 12) -> str:
    lines = ["| pair of sources | true pairs | found | recall | false pairs |", "|---|---|---|---|---|"]
    labels = sorted(set(by_pair.true_pairs) | set(by_pair.false_pairs),
                    key=lambda lab: -(by_pair.true_pairs[lab] - by_pair.found_pairs[lab] + by_pair.false_pairs[lab]))
    for lab in labels[:top]:
        lines.append(f"| {lab} | {by_pair.true_pairs[lab]} | {by_pair.found_pairs[lab]} | {by_pair.recall(lab):.4f} | "
                     f"{by_pair.false_pairs[lab]} |")
    lines += ["", "| hard case (either record) | true pairs | found | recall | false pairs |", "|---|---|---|---|---|"]
    for lab in sorted(set(by_case.true_pairs) | set(by_case.false_pairs)):
        lines.append(f"| {lab} | {by_case.true_pairs[lab]} | {by_case.found_pairs[lab]} | {by_case.recall(lab):.4f} | "
                     f"{by_case.false_pairs[lab]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("links_csv", type=Path)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()
    by_pair, by_case = analyse(args.corpus_dir, args.links_csv, args.examples)
    print(report(by_pair, by_case))
    for board in (by_pair, by_case):
        for label, ex in sorted(board.missed_examples.items()):
            print(f"missed [{label}]:", *ex, sep="\n  ")
        for label, ex in sorted(board.false_examples.items()):
            print(f"false [{label}]:", *ex, sep="\n  ")


if __name__ == "__main__":
    main()
