"""Resolution at scale: ≈1.5 M source records (340 k generated persons), time and peak RSS.

Side by side, each in its own process on a copy of the same ingested lakehouse:
- baseline: the deterministic pass alone (strong identifiers, union-find), no model, no mentions;
- campus-kg resolve: identifiers, the Splink model, constrained clustering, review queue,
  person mentions, survivorship.
Both are scored against the generator's truth.

    .venv/bin/python bench/resolution_bench.py [--persons 340000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import ingested_workspace, measured, table, write_section  # noqa: E402


GOAL_SECONDS, GOAL_RSS_MB = 134, 3_100
# What the numbers meant at the last run; re-read them after a change.
FINDINGS = """
Reading (2026-12-02, second session; one run, load average 0.7–1.2): 205 s and 3.8 GB. The time of
one resolve at this size moves by ±15 % between runs on this machine with the same code (139 s,
192 s, 214 s, 229 s and 252 s on two nights). Back to back on copies of this lakehouse, the code
of the previous reading (61ad2c7) against today's, time by stage (`campus-kg resolve` prints it):
identifiers 17 / 20 s, training 19 / 16 s, pair scoring 47 / 44 s (the typo levels now test lengths
and differing positions before Damerau-Levenshtein, 20× less of it; the new swapped-digits level
would otherwise have cost 30 s), clustering 12 / 14 s, record-to-entity matching 17 / 27 s (the
kind of person, measured per source), mentions 52 / 55 s, survivorship 33 / 27 s; 3 min 42 s
whole-process wall both. What the change bought at this size: person mentions linked 99,712 →
125,941, ambiguous 86,145 → 56,674, review items deferred 73,178 → 43,697; with mentions counted as
records P / R / F1 0.9891 / 0.8600 / 0.9201 → 0.9817 / 0.9034 / 0.9409. The precision lost is
outsiders: external co-authors linked to one of ours (812 → 1,732 of 47,780), because without a
mention that names a unit not ours nothing here measures how often an outsider's name meets ours
(the fallback is 0.1; at 340,000 people most names are shared). Estimating it from our own names
instead (the share of our people whose name another bears, 0.31 at 5,000 persons) was tried and
dropped: at the generator's default size it cut recall with mentions from 0.9973 to 0.9475.
What remains, by stage: mentions, pair scoring, survivorship and record-to-entity matching; the
superlinear parts (mentions, survivorship) are the ones to cut.

Reading (2026-12-02, third session): 232 s and 3.8 GB, the baseline beside it 29.0 s against 24.9 s
in the reading above (the machine slower by as much): 7.99× the baseline against 8.22×, within the
noise; the same links, mentions and review items to the last one. A py-spy profile of one resolve
(20 samples/s) put 21 % of the time in Splink's predict (pair scoring), 24 % in mentions (of which
the SQL first pass 7 %, the second pass in Python 8 %), 14 % in survivorship, 10 % in
record-to-entity matching, 7 % in training, 7 % in the union-find. Cut: the mention stage, measured
alone on a copy of the resolved lakehouse, 56 s → 45 s with the unit evidence counted in SQL
instead of 1.3 M records walked in Python (the kind and advising weights, now computed once per
kind and role rather than per candidate, were not timed apart). Tried and reverted: survivorship as one grouping of the statements (20 s → 12 s
alone and the same output, but its aggregate states ran out of the lakehouse's 512 MB inside a
resolve, where the window functions spill).
"""


def child(kind: str, lakehouse: Path, truth: Path) -> dict:
    from ingest.lakehouse import Lakehouse
    from resolution import evaluate as ev

    started = time.perf_counter()
    with Lakehouse(lakehouse) as lake:
        if kind == "baseline":
            from resolution import master_ids
            from resolution.clusters import ConstrainedUnionFind
            from resolution.exact import add_records, finish, identifier_rows, link_identifiers

            uf, rule = ConstrainedUnionFind(), {}
            rows = identifier_rows(lake.con)
            add_records(uf, rows)
            link_identifiers(uf, rows, rule)
            clustering = finish(uf, rule)
            master_ids.ensure_tables(lake.con)
            members = master_ids.assign(lake.con, "Person", clustering.clusters, "bench")
            lake.con.execute("DELETE FROM res_link WHERE entity_type = 'Person'")
            import pyarrow as pa

            lake.con.register("_m", pa.table({"member_id": list(members), "master_id": list(members.values())}))
            lake.con.execute("INSERT INTO res_link SELECT member_id, 'Person', master_id, 'exact' FROM _m")
            extra = {}
        else:
            from resolution.person_linkage import LinkageOptions
            from resolution.run import resolve

            result = resolve(lake, LinkageOptions(model_path=lakehouse.with_name("person.json")))
            whole = ev.mentions_as_records(lake, truth, truth.with_name("truth_mentions.csv"))
            extra = {"probabilistic_links": result.probabilistic_links, "entity_links": result.entity_links,
                     "review_items": result.review_items, "review_deferred": result.review_deferred,
                     "mentions": result.mentions,
                     "with_mentions": [whole.precision, whole.recall, whole.f1]}
        seconds = time.perf_counter() - started
        pw = ev.pairwise(lake, truth, "Person")
        return {"seconds": seconds, "records": pw.records, "precision": pw.precision, "recall": pw.recall,
                "f1": pw.f1, **extra}


def measure(kind: str, source: Path, workdir: Path, truth: Path) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    lakehouse = workdir / "lakehouse.duckdb"
    shutil.copy(source, lakehouse)
    return measured(__file__, ["--child", kind, "--lakehouse", str(lakehouse), "--truth", str(truth)],
                    workdir / "result.json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=340_000)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--child")
    parser.add_argument("--lakehouse", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        args.out.write_text(json.dumps(child(args.child, args.lakehouse, args.truth)))
        return

    root = args.data_dir / f"resolution-{args.persons}"
    ws = ingested_workspace(root, args.persons)
    truth = root / "sources" / "truth.csv"
    results = []
    for label, kind in (("baseline: identifiers only", "baseline"), ("campus-kg resolve", "campus-kg")):
        print(f"running {label} …", flush=True)
        r = measure(kind, ws.lakehouse, root / "work" / kind, truth)
        r["label"] = label
        results.append(r)
        print(f"  {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB, F1 {r['f1']:.4f}", flush=True)
    base = results[0]
    rows = [[r["label"], f"{r['records']:,}", f"{r['seconds']:.1f}", f"{r['seconds'] / base['seconds']:.2f}",
             f"{r['peak_rss_mb']:,.0f}", f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}"]
            for r in results]
    ours = results[1]
    body = table(["resolver", "Person records", "seconds", "time vs baseline", "peak RSS MB", "pairwise P",
                  "pairwise R", "pairwise F1"], rows)
    body += (f"\n\ncampus-kg: {ours['probabilistic_links']:,} probabilistic links, {ours['entity_links']:,} weakly "
             f"identified records linked to the one entity that fits, {ours['review_items']:,} review items queued "
             f"({ours['review_items'] / ours['records']:.2%} of the person records; the review budget is 1 %) and "
             f"{ours['review_deferred']:,} deferred beyond the budget, person mentions {ours['mentions']}; "
             "person pairwise with mentions counted as records (issue 12's measure) P / R / F1 "
             + " / ".join(f"{v:.4f}" for v in ours["with_mentions"]) + ".")
    goal_met = ours["seconds"] <= GOAL_SECONDS and ours["peak_rss_mb"] <= GOAL_RSS_MB
    body += (f"\n\nIssue 12's goal, time and peak RSS no worse than {GOAL_SECONDS} s / {GOAL_RSS_MB:,} MB (the run of "
             f"2026-11-21, before linkage learnt to generalise): **{'met' if goal_met else 'NOT met'}**.\n" + FINDINGS)
    write_section("Resolution: 1.5 M records", f".venv/bin/python bench/resolution_bench.py --persons {args.persons}",
                  body)
    print(body)


if __name__ == "__main__":
    main()
