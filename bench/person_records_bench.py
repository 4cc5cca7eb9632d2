"""Issue 14: `GET /persons/{id}` at 32 clients, cold (persons drawn from all), beside `GET /health` on
the same server, with the person records precomputed per build (graph_api/graph_build/person_records.py) and,
in the same run, from the graph (the served build's pointer without its records) — the machine is
shared, so only ratios measured in one run are compared.

    .venv/bin/python bench/person_records_bench.py --workspace DIR [--seconds 10] [--slices 5] [--write]

DIR: a workspace whose served build is a Ladybug build with person records (e.g. a copy of
bench/.data/backends-30000/ws after `campus-kg build-graph --backend ladybug`). Its pointer is
switched for the graph-read rows and restored afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_bench import HEALTH, PERSONS, REPORT, _serve, _wrk  # noqa: E402
from bench.results import auditor_token_and_persons, table, write_section  # noqa: E402

CLIENTS = 32
# (label, person records served, token_cache_seconds)
CONFIGS = (("graph read (build without person records)", False, 0),
           ("person records, token looked up per request", True, 0),
           ("person records, token_cache_seconds=2", True, 2))


def _interleaved(url: str, persons: Path, health: Path, seconds: int, slices: int) -> tuple[dict, dict]:
    """Person reads and /health in alternating slices of seconds / slices each, so that the machine's
    load drifting (it is shared) weighs on both alike: requests/s over all slices, the median of the
    slices' p50 and p99."""
    runs: dict[str, list[dict]] = {"persons": [], "health": []}
    for _ in range(slices):
        for name, script in (("persons", persons), ("health", health)):
            runs[name].append(_wrk(url, script, CLIENTS, max(1, seconds // slices)))
    out = []
    for name in ("persons", "health"):
        done = runs[name]
        total = {"requests": sum(r["requests"] for r in done), "seconds": sum(r["seconds"] for r in done),
                 "errors": sum(r["errors"] for r in done), "non2xx": sum(r["non2xx"] for r in done),
                 "p50": statistics.median(r["p50"] for r in done), "p99": statistics.median(r["p99"] for r in done)}
        total["rps"] = total["requests"] / total["seconds"]
        out.append(total)
    return out[0], out[1]


def main() -> None:
    from campus_kg.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--slices", type=int, default=5, help="alternating slices per endpoint")
    parser.add_argument("--write", action="store_true", help="write the rows into bench/RESULTS.md")
    args = parser.parse_args()
    ws = Workspace.at(args.workspace)
    pointer = ws.read_current_graph()
    if not pointer or pointer["backend"] != "ladybug" or not pointer.get("person_records_path"):
        raise SystemExit("the served build must be a Ladybug build with person records")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        token, ids = auditor_token_and_persons(ws.root, Path(tmp), "person-records-bench")
        script, health = Path(tmp) / "persons.lua", Path(tmp) / "health.lua"
        script.write_text(PERSONS % (", ".join(f'"{i}"' for i in ids), token) + REPORT % ())
        health.write_text(HEALTH + REPORT % ())
        try:
            for label, records, cache in CONFIGS:
                ws.publish_graph(pointer if records else {**pointer, "person_records_path": None})
                os.environ["CAMPUS_KG_TOKEN_CACHE_SECONDS"] = str(cache)
                proc, url = _serve(ws.root, os.cpu_count() or 2, 8, 10_000)
                try:
                    _wrk(url, script, 8, 3)  # warm
                    person, floor = _interleaved(url, script, health, args.seconds, args.slices)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                results[label] = {"persons": person, "health": floor}
                share, tail = person["rps"] / floor["rps"], person["p99"] / max(floor["p99"], 1)
                for name, w in (("`GET /persons/{id}`", person), ("`GET /health`", floor)):
                    rows.append([label, name, f"{w['p50'] / 1000:.1f}", f"{w['p99'] / 1000:.1f}", f"{w['rps']:,.0f}",
                                 f"{share:.0%}" if w is person else "", f"{tail:.1f}×" if w is person else "",
                                 w["errors"] + w["non2xx"]])
                print(label, f"{share:.0%} of /health, p99 {tail:.1f}×", flush=True)
        finally:
            ws.publish_graph(pointer)
            os.environ.pop("CAMPUS_KG_TOKEN_CACHE_SECONDS", None)
    body = table(["served from", "endpoint", "p50 ms", "p99 ms", "requests/s", "÷ /health requests/s",
                  "p99 ÷ /health's", "errors"], rows)
    best = results[CONFIGS[-1][0]]
    share = best["persons"]["rps"] / best["health"]["rps"]
    tail = best["persons"]["p99"] / max(best["health"]["p99"], 1)
    body += (f"\n\n{len(ids):,} persons (workspace `{args.workspace}`, a Ladybug build with person records), {CLIENTS} clients, cold (persons "
             f"drawn from all), {args.seconds} s per endpoint in {args.slices} alternating slices (requests/s over all "
             f"slices, median of the slices' p50 and p99), `serve --workers {os.cpu_count()}`. Goal (issue 14): person reads ≥ 50 % of /health's "
             f"requests/s — {share:.0%} with the token cache ({'met' if share >= 0.5 else 'NOT met'}); p99 ≤ 2 × "
             f"/health's — {tail:.1f}× ({'met' if tail <= 2 else 'NOT met'}).")
    print(body)
    print(json.dumps(results))
    if args.write:
        write_section("GET /persons/{id} from person records precomputed per build (issue 14)",
                      f".venv/bin/python bench/person_records_bench.py --workspace DIR --seconds {args.seconds} "
                      f"--slices {args.slices} --write",
                      body)


if __name__ == "__main__":
    main()
