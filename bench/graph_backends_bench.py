"""Ladybug beside Neo4j on the same workspace, in one run: the full graph build (time, and peak RSS
with the JVM's own), `GET /persons/{id}` under load at 1 / 8 / 32 clients (wrk against
`campus-kg serve`), and each saved query's latency.

Ladybug (embedded, the default) is the baseline; the goals are Neo4j's full build ≤ 3 × Ladybug's
and its person read within 2 × Ladybug's. Neo4j 5.26 runs from tools/neo4j-server (two servers:
one serves while a rebuild loads the other), started fresh for the run so its peak RSS (VmHWM of
the JVM) is the build's.

    .venv/bin/python bench/graph_backends_bench.py [--persons 300000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_bench import CLIENTS, PERSONS, REPORT, _serve, _wrk  # noqa: E402
from bench.results import auditor_token_and_persons, measured, prepared_workspace, table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NEO4J = ROOT / "tools" / "neo4j-server" / "neo4j.sh"


def child_build(workspace: Path, backend: str) -> dict:
    from campus_kg.settings import Settings
    from campus_kg.workspace import Workspace
    from graph_api.build import build_graph

    ws = Workspace.at(workspace)
    started = time.perf_counter()
    result = build_graph(Settings(workspace=ws.root), ws, backend=backend, mode="full")
    return {"seconds": time.perf_counter() - started, "nodes": sum(result.nodes.values()),
            "rels": sum(result.rels.values())}


def child_queries(workspace: Path, runs: int) -> dict:
    """p50 of each saved query on the served graph (whichever backend the pointer names), in-process."""
    from campus_kg.settings import Settings
    from campus_kg.workspace import Workspace
    from graph_api.served_graph import ServedGraph
    from queries import load_query, names, needs_entity

    ws = Workspace.at(workspace)
    graph = ServedGraph(Settings(workspace=ws.root), ws)
    try:
        person = graph.query("MATCH (p:Person)-[:AUTHOR_OF]->() RETURN p.id AS id ORDER BY id LIMIT 1")[0]["id"]
        orgs = [r["id"] for r in graph.query("MATCH (o:Organisation) RETURN o.id AS id ORDER BY id LIMIT 20")]
        values = {"id": person, "entity_id": person, "property": "name", "orgs": orgs}
        out = {}
        for name in names():
            text = load_query(name, "Person" if needs_entity(name) else None)
            params = {k: values[k] for k in set(re.findall(r"\$(\w+)", text))}
            graph.query(text, params)  # warm
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                graph.query(text, params)
                times.append((time.perf_counter() - started) * 1000)
            out[name] = statistics.median(times)
        return out
    finally:
        graph.close()


def _vm_hwm_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024


def _reads(ws_root: Path, ids: list[str], token: str, seconds: int, tmp: Path) -> dict[int, dict]:
    script = tmp / "persons.lua"
    script.write_text(PERSONS % (", ".join(f'"{i}"' for i in ids), token) + REPORT % ())
    proc, url = _serve(ws_root, os.cpu_count() or 2, 8, 10_000)
    try:
        _wrk(url, script, 8, 3)  # warm the buffer pools / page cache
        return {clients: _wrk(url, script, clients, seconds) for clients in CLIENTS}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=300_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--query-runs", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--neo4j-heap", default="4g")
    parser.add_argument("--child", type=Path)
    parser.add_argument("--backend")
    parser.add_argument("--child-queries", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        args.out.write_text(json.dumps(child_build(args.child, args.backend)))
        return
    if args.child_queries:
        args.out.write_text(json.dumps(child_queries(args.child_queries, args.query_runs)))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")

    root = args.data_dir / f"backends-{args.persons}"
    ws = prepared_workspace(root, args.persons)
    state = root / "neo4j"
    subprocess.run([str(NEO4J), "down", str(state)], check=True)
    subprocess.run([str(NEO4J), "up", str(state)], check=True, env={**os.environ, "NEO4J_HEAP": args.neo4j_heap})
    env = dict(line.split("=", 1) for line in (state / "env").read_text().split())
    os.environ.update(env)  # children (builds, servers) reach Neo4j through these
    jvm = int((state / "pid").read_text())
    try:
        results: dict[str, dict] = {}
        with tempfile.TemporaryDirectory() as tmp:
            token, ids = auditor_token_and_persons(ws.root, Path(tmp), "backends-bench")
            for backend in ("ladybug", "neo4j"):
                print(f"{backend}: full build …", flush=True)
                build = measured(__file__, ["--child", str(ws.root), "--backend", backend], root / f"{backend}.json")
                if backend == "neo4j":
                    build["jvm_peak_rss_mb"] = _vm_hwm_mb(jvm)
                print(f"{backend}: person reads …", flush=True)
                reads = _reads(ws.root, ids, token, args.seconds, Path(tmp))
                print(f"{backend}: saved queries …", flush=True)
                queries = measured(__file__, ["--child-queries", str(ws.root), "--query-runs", str(args.query_runs)],
                                   root / f"{backend}-queries.json")
                queries.pop("peak_rss_mb", None)
                results[backend] = {"build": build, "reads": reads, "queries": queries}
    finally:
        subprocess.run([str(NEO4J), "down", str(state)], check=False)

    lb, nj = results["ladybug"], results["neo4j"]
    rows = []
    for backend, r in results.items():
        b = r["build"]
        rss = f"{b['peak_rss_mb']:,.0f} MB" + (f" + JVM {b['jvm_peak_rss_mb']:,.0f} MB" if "jvm_peak_rss_mb" in b else "")
        rows.append([backend, f"{b['seconds']:.1f}", f"{b['seconds'] / lb['build']['seconds']:.2f}×", rss,
                     f"{b['nodes']:,} nodes, {b['rels']:,} relationships"])
    body = "### Full build\n\n" + table(["backend", "seconds", "vs Ladybug", "peak RSS", "graph"], rows)
    rows = []
    for backend, r in results.items():
        for clients, w in r["reads"].items():
            base = lb["reads"][clients]
            rows.append([backend, clients, f"{w['p50'] / 1000:.1f}", f"{w['p99'] / 1000:.1f}", f"{w['rps']:,.0f}",
                         f"{base['rps'] / w['rps']:.2f}×" if w["rps"] else "—", w["errors"] + w["non2xx"]])
    body += ("\n\n### `GET /persons/{id}`, persons drawn from all of them (wrk, "
             f"{args.seconds} s per level, `serve --workers {os.cpu_count()}`)\n\n"
             + table(["backend", "clients", "p50 ms", "p99 ms", "requests/s", "Ladybug's requests/s ÷ this", "errors"],
                     rows))
    rows = [[name, f"{lb['queries'][name]:.2f}", f"{nj['queries'][name]:.2f}",
             f"{nj['queries'][name] / max(lb['queries'][name], 1e-6):.1f}×"] for name in sorted(lb["queries"])]
    body += (f"\n\n### Saved queries, median of {args.query_runs} runs in-process\n\n"
             + table(["query", "Ladybug ms", "Neo4j ms", "Neo4j ÷ Ladybug"], rows))
    build_ratio = nj["build"]["seconds"] / lb["build"]["seconds"]
    read_ratio = lb["reads"][32]["rps"] / max(nj["reads"][32]["rps"], 1e-9)
    body += (f"\n\nGoals: Neo4j full build ≤ 3 × Ladybug's — {build_ratio:.2f}× "
             f"({'met' if build_ratio <= 3 else 'NOT met'}); person read within 2 × Ladybug's at 32 clients — "
             f"{read_ratio:.2f}× ({'met' if read_ratio <= 2 else 'NOT met'}). Both builds include the analyst "
             "projection (an embedded Ladybug file either way). Neo4j loads the standby server with UNWIND in "
             "batches of `neo4j_batch_size`, one list per column, from the same Arrow frames.")
    write_section("Graph backends: Ladybug beside Neo4j",
                  f".venv/bin/python bench/graph_backends_bench.py --persons {args.persons} --seconds {args.seconds}",
                  body)
    print(body)


if __name__ == "__main__":
    main()
