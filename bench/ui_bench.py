"""Issue 16: a person's page, 个人数据中心 `/ui/me`, renders in ≤ 300 ms server time on the large graph.

Against `campus-kg serve` on a workspace with a served Ladybug build (person records included), a
self user is signed in through the sign-in form for each of N persons drawn at random from all the
build's persons, and their page is fetched once: cold, no person twice. Beside it, in the same run
and interleaved request by request, `GET /me` (the same record as JSON, for N other persons) is the
baseline, and `GET /health` the floor of the HTTP round trip itself.

Times are taken at the client, one request at a time on a kept-alive loopback connection, from
sending the request to the last byte of the answer: the server's time plus the loopback round trip
and the client's own parsing, which `GET /health` shows the size of.

    .venv/bin/python bench/ui_bench.py [--persons 300000 | --workspace DIR] [--samples 200] [--write]

Without --workspace the workspace of bench/graph_backends_bench.py at that size is used (generated,
ingested and resolved once, `bench/.data/backends-<persons>/ws`) and a Ladybug graph built with
`campus-kg build-graph` when it serves none (that benchmark ends on a Neo4j build).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_bench import _serve  # noqa: E402
from bench.results import prepared_workspace, table, write_section  # noqa: E402

GOAL_MS = 300
WARM_UP = 5  # persons per endpoint fetched before measuring (templates compiled, graph opened), not counted


def _workspace(args) -> Path:
    from campus_kg.workspace import Workspace

    if args.workspace:
        ws = Workspace.at(args.workspace)
    else:
        ws = prepared_workspace(args.data_dir / f"backends-{args.persons}", args.persons)
    served = ws.read_current_graph()
    if served is None or served["backend"] != "ladybug":  # graph_backends_bench.py ends on a Neo4j build
        print(f"{ws.root}: no served Ladybug graph, building it …", flush=True)
        subprocess.run([sys.executable, "-c", "from campus_kg.cli import app; app()", "build-graph",
                        "--workspace", str(ws.root), "--backend", "ladybug", "--mode", "full"], check=True)
    return ws.root


def _persons_and_tokens(workspace: Path, count: int, seed: int) -> tuple[int, list[tuple[str, str, str]]]:
    """How many persons the served build holds, and `count` of them drawn at random, each with a new
    `self` token bound to them: (person_id, token_id, token)."""
    from campus_kg.settings import Settings
    from campus_kg.state import StateStore
    from campus_kg.workspace import Workspace
    from graph_api.graph_build.person_records import PersonRecords

    pointer = Workspace.at(workspace).read_current_graph()
    if not pointer.get("person_records_path"):
        raise SystemExit(f"{workspace}: the served build has no person records (rebuild it with this campus-kg)")
    records = PersonRecords(pointer["person_records_path"])
    try:
        everyone = records.master_ids()
    finally:
        records.close()
    if len(everyone) < count:
        raise SystemExit(f"{workspace}: {len(everyone)} persons, fewer than the {count} asked for")
    settings = Settings(workspace=workspace)
    state = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value())
    chosen = random.Random(seed).sample(everyone, count)
    return len(everyone), [(p, *state.add_user(f"ui-bench-{n}", "self", person_id=p)) for n, p in enumerate(chosen)]


def _revoke(workspace: Path, token_ids: list[str]) -> None:
    from campus_kg.settings import Settings
    from campus_kg.state import StateStore

    settings = Settings(workspace=workspace)
    state = StateStore(settings.state_database_url(), settings.token_secret.get_secret_value())
    for token_id in token_ids:
        state.revoke(token_id)


def _signed_in(url: str, token: str) -> httpx.Client:
    """A client holding a session cookie, signed in as a browser does: the form's double-submit token."""
    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/ui/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/ui/login", data={"token": token, "csrf_token": csrf, "next": "/ui/me"})
    if answer.status_code != 303 or answer.headers["location"] != "/ui/me":
        raise SystemExit(f"sign-in refused: HTTP {answer.status_code} {answer.text[:200]}")
    return client


def _timed(client: httpx.Client, path: str, person: str, **kwargs) -> float:
    started = time.perf_counter()
    answer = client.get(path, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200 or (person and person not in answer.text):
        raise SystemExit(f"GET {path} for {person}: HTTP {answer.status_code} {answer.text[:300]}")
    return elapsed


def _stats(times: list[float]) -> list[str]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return [f"{statistics.median(ordered):.1f}", f"{p95:.1f}", f"{ordered[-1]:.1f}"]


def measure(url: str, ui_users: list[tuple[str, str, str]], api_users: list[tuple[str, str, str]]) -> dict:
    """Interleaved, one request at a time: a person's page, then another person's `GET /me`, then
    `GET /health`, so the shared machine's drifting load weighs on all three alike."""
    times: dict[str, list[float]] = {"ui": [], "api": [], "health": []}
    with httpx.Client(base_url=url, timeout=60) as api:
        for n, ((ui_person, _, ui_token), (api_person, _, api_token)) in enumerate(zip(ui_users, api_users)):
            browser = _signed_in(url, ui_token)  # signing in is not measured
            try:
                times["ui"].append(_timed(browser, "/ui/me", ui_person))
            finally:
                browser.close()
            times["api"].append(_timed(api, "/me", api_person, headers={"Authorization": f"Bearer {api_token}"}))
            times["health"].append(_timed(api, "/health", ""))
            if (n + 1) % 50 == 0:
                print(f"{n + 1} / {len(ui_users)}", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=300_000, help="size of the backends bench's workspace")
    parser.add_argument("--workspace", type=Path, help="a workspace with a served Ladybug build instead")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / ".data")
    parser.add_argument("--samples", type=int, default=200, help="persons whose page is fetched (and as many for /me)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--write", action="store_true", help="write the section of bench/RESULTS.md")
    args = parser.parse_args()

    workspace = _workspace(args)
    total, users = _persons_and_tokens(workspace, 2 * (args.samples + WARM_UP), args.seed)
    warm, users = users[:2 * WARM_UP], users[2 * WARM_UP:]
    proc, url = _serve(workspace, args.workers, 8, 10_000)
    try:
        measure(url, warm[:WARM_UP], warm[WARM_UP:])
        load_before = os.getloadavg()[0]
        times = measure(url, users[:args.samples], users[args.samples:])
        load_after = os.getloadavg()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        _revoke(workspace, [token_id for _, token_id, _ in warm + users])

    rows = [["`GET /ui/me` (个人数据中心, HTML)", *_stats(times["ui"])],
            ["`GET /me` (the same record as JSON): baseline", *_stats(times["api"])],
            ["`GET /health`: the round trip's floor", *_stats(times["health"])]]
    body = table(["request", "p50 ms", "p95 ms", "max ms"], rows)
    p95 = float(_stats(times["ui"])[1])
    shown = workspace if args.workspace else f"bench/.data/backends-{args.persons}/ws"
    body += (f"\n\n{total:,} persons in the served Ladybug build (workspace `{shown}`); {args.samples} persons' "
             f"pages and {args.samples} other persons' `GET /me`, each person once (cold), drawn at random "
             f"(seed {args.seed}), interleaved one request at a time with `GET /health`, against "
             f"`campus-kg serve --workers {args.workers}`; each self user signed in through the form first "
             "(not timed). Times at the client on a kept-alive loopback connection, to the last byte. "
             f"Load average {load_before:.1f} → {load_after:.1f} on the shared machine.\n\n"
             f"Goal (issue 16): a person's page in ≤ {GOAL_MS} ms — p95 {p95:.1f} ms "
             f"({'met' if p95 <= GOAL_MS else 'NOT met'}). The page does what `GET /me` does (the stored "
             "record, the access-log row) and adds the person's corrections, the last 50 reads of the "
             "record (who read my record) and the template.")
    print(body)
    if args.write:
        command = ".venv/bin/python bench/ui_bench.py " + (
            f"--workspace {args.workspace}" if args.workspace else f"--persons {args.persons}")
        write_section("Web pages: 个人数据中心 /ui/me (issue 16)",
                      f"{command} --samples {args.samples} --seed {args.seed} --write", body)


if __name__ == "__main__":
    main()
