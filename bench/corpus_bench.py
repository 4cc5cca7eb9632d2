"""The product on the independent corpus (tests/corpus/build_corpus.py: a university written from the
documentation only, not by `campus-kg generate`), at several sizes.

For each size the corpus is built, then the real command line runs as subprocesses and is timed:
`campus-kg run --mapping … --workspace …`, `campus-kg evaluate --workspace … --truth … --mentions … --json`,
`campus-kg export links`. The section in bench/RESULTS.md gives pairwise and B-cubed P/R/F1, mention
P/R, person pairwise P/R/F1 with mentions counted as records (issue 12's measure), review items per
Person record, the calibration of match probabilities, the hard cases `evaluate` reports, and the
exported links scored per pair of sources and per hard case of the corpus (tests/corpus/analyse.py).

    .venv/bin/python bench/corpus_bench.py [--persons 2000 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import table, write_section  # noqa: E402
from tests.corpus import cli  # noqa: E402
from tests.corpus.analyse import analyse, report  # noqa: E402
from tests.corpus.build_corpus import build  # noqa: E402

TITLE = "Resolution on an independent corpus (issue 12)"
GOAL = "issue 12's goal: person pairwise P ≥ 0.998, R ≥ 0.99"
# What the numbers meant at the last run (2026-12-01, seed 7); re-read them after a change.
FINDINGS = """
Reading (2026-12-01, second session: mentions weighed by key frequency and staff evidence, blocks
over 50 records left out of the blockings that would pair more than 20 per record): precision is
1.0000 for records at both sizes. Every pair of records that both carry a correct identifier is
found. The name-only records (finance payees, card holders without a number) link when exactly one
entity fits (p ≥ 0.99 against "none of ours"); what is left unlinked is ambiguous — at 10,000
persons a payee 赵强 of a college with two 赵强 and nothing but a bank account no other system
holds — and goes to review once per record. Mentions: a romanised author's name is weighed by how
many of our people carry its key (`Mingqian Wu` meets one, `Wei Zhang` hundreds), and whether a
candidate is staff by how often linked authors are (0.87 against 0.24 of the corpus's people:
+1.87 / −2.53 bits); at 10,000 persons mention recall rose from 0.8397 to 0.8947 at precision
0.9963 (0.9979), ambiguous mentions from 1,196 to 777. What stays ambiguous is namesakes the
mention cannot tell apart: five 刘秀 in one college for a co-author `Xiu Liu` written without a
unit, three 王芳 in 管理与经济学院 of whom one is staff. Of the ambiguous internal mentions at 10,000
persons, the true person is the leading candidate for about three in four, but at a posterior
(0.5–0.95) the calibration table says is honest. Issue 12's goal R ≥ 0.99 with mentions counted
as records is **NOT met** on this corpus (0.9691 / 0.9414); the review queue is at or under the
budget (1 % of person records, never cut below 100 items; the rest wait in `res_review_deferred`).
"""


def measure(persons: int, seed: int, work: Path) -> dict:
    corpus = build(work / f"corpus{persons}", persons=persons, seed=seed).parent
    ws = work / f"ws{persons}"
    ran = cli.campus_kg("run", "--mapping", str(corpus / "mapping.yaml"), "--workspace", str(ws))
    if ran.returncode != 0:
        raise SystemExit(f"campus-kg run failed ({ran.returncode}):\n{ran.output[-4000:]}")
    evaluation, evaluate_seconds = _evaluate(ws, corpus)
    links = cli.campus_kg("export", "links", "--workspace", str(ws), "--out", str(ws / "links.csv"))
    if links.returncode != 0:
        raise SystemExit(f"campus-kg export links failed:\n{links.output[-4000:]}")
    counts = cli.ingest_counts(ran.output)
    by_pair, by_case = analyse(corpus, ws / "links.csv", examples=3)
    stats = json.loads((corpus / "corpus_stats.json").read_text(encoding="utf-8"))
    return {"persons": persons, "stats": stats, "seconds": {"run": ran.seconds, "evaluate": evaluate_seconds,
                                                            "export links": links.seconds},
            "balanced": all(r == lo + q for r, lo, q in counts.values()), "records": sum(r for r, _, _ in counts.values()),
            "evaluation": evaluation,
            "ambiguous_mentions": _ambiguous(ran.output), "breakdown": report(by_pair, by_case),
            "missed": {k: v for k, v in by_case.missed_examples.items() if k.startswith(("name_only", "homophone"))}}


def _evaluate(ws: Path, corpus: Path) -> tuple[dict, float]:
    """`campus-kg evaluate --json`: its stdout is the document (warnings, if any, go to stderr)."""
    started = time.perf_counter()
    proc = subprocess.run([cli.CLI, "evaluate", "--workspace", str(ws), "--truth", str(corpus / "truth_persons.csv"),
                           "--mentions", str(corpus / "truth_mentions.csv"), "--json"],
                          capture_output=True, text=True, env=cli.ENV, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"campus-kg evaluate failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return json.loads(proc.stdout), time.perf_counter() - started


def _ambiguous(output: str) -> int | None:
    import re

    m = re.search(r"ambiguous (\d+)", output)
    return int(m.group(1)) if m else None


def body(results: list[dict]) -> str:
    rows = []
    for r in results:
        person = r["evaluation"]["entity_types"]["Person"]
        pw, b3 = person["pairwise"], person["bcubed"]
        m, whole, review = (r["evaluation"][k] for k in ("mentions", "mentions_as_records", "review"))
        rows.append([f"{r['persons']:,}", f"{person['records']:,}", f"{r['records']:,}",
                     f"{pw['precision']:.4f}", f"{pw['recall']:.4f}", f"{pw['f1']:.4f}",
                     f"{b3['precision']:.4f} / {b3['recall']:.4f}",
                     f"{m['precision']:.4f} / {m['recall']:.4f}",
                     f"{whole['precision']:.4f} / {whole['recall']:.4f} / {whole['f1']:.4f} ({whole['mentions']:,})",
                     f"{review['per_person_record']:.3f} ({review['person_items']:,})",
                     f"{r['ambiguous_mentions']:,}",
                     " / ".join(f"{r['seconds'][k]:.1f}" for k in ("run", "evaluate", "export links")),
                     "yes" if r["balanced"] else "NO"])
    out = [GOAL + ". Corpus: `tests/corpus/build_corpus.py` (twelve exports of ten systems; see its docstring). "
           "Command per size: `campus-kg run --mapping corpus/mapping.yaml --workspace ws`, `campus-kg evaluate "
           "--workspace ws --truth corpus/truth_persons.csv --mentions corpus/truth_mentions.csv --json`, "
           "`campus-kg export links --workspace ws --out links.csv`.", "",
           table(["persons", "person records", "all records", "pairwise P", "pairwise R", "pairwise F1", "B³ P / R",
                  "mentions P / R", "with mentions as records P / R / F1 (mentions)",
                  "person review items per record (items)", "ambiguous mentions",
                  "seconds: run / evaluate / export", "read = loaded + quarantined"], rows), FINDINGS]
    for r in results:
        hard = r["evaluation"]["hard_cases"]
        out += ["", f"**{r['persons']:,} persons** — `evaluate`'s hard cases:", "",
                table(["pairs", "of them", "correct", "rate"],
                      [[v["pairs"], k, v["correct"], f"{v['rate']:.4f}"] for k, v in hard.items()]),
                "", *_calibration(r["evaluation"]["calibration"]),
                "", "Exported links against the corpus truth (tests/corpus/analyse.py), worst source pairs first:", "",
                r["breakdown"]]
    return "\n".join(out)


def _calibration(calibration: dict) -> list[str]:
    """`evaluate`'s calibration tables: the deciles of predicted probability against what was observed."""
    out = []
    for what, label in (("pairs", "record pairs"), ("entities", "record / mention to master")):
        cal = calibration[what]
        if not cal["available"]:
            out += [f"Calibration ({label}): no `{cal['table']}` in the workspace.", ""]
            continue

        def shown(v: float | None) -> str:
            return "—" if v is None else f"{v:.4f}"

        out += [f"Calibration ({label}, `{cal['table']}`): {cal['labelled']:,} of {cal['scored']:,} scored rows "
                f"labelled; Brier {shown(cal['brier'])}, ECE {shown(cal['ece'])}.", "",
                table(["predicted", "count", "mean predicted", "observed"],
                      [[f"{b['lower']:.1f}–{b['upper']:.1f}", f"{b['count']:,}", shown(b["mean_predicted"]),
                        shown(b["observed"])] for b in cal["bins"]]), ""]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="campus-kg-corpus-") as tmp:
        results = [measure(n, args.seed, Path(tmp)) for n in args.persons]
    text = body(results)
    print(text)
    for r in results:
        for label, examples in r["missed"].items():
            print(f"{r['persons']} missed [{label}]:", *examples, sep="\n  ")
    if not args.no_write:
        write_section(TITLE, "python bench/corpus_bench.py --persons " + " ".join(map(str, args.persons))
                      + f" --seed {args.seed}", text)


if __name__ == "__main__":
    main()
