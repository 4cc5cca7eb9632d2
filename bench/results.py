"""Shared by the benchmarks: describe the machine and write one section of bench/RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is rewritten by the benchmark named in it; the command reproduces it.\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.+)", text).group(1)
    except (OSError, AttributeError):
        pass
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        mem = "RAM unknown"
    return f"{cpu}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def write_section(title: str, command: str, body: str) -> None:
    """Replaces the section `## title` (or appends it)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    section = (f"## {title}\n\n- Date: {dt.date.today().isoformat()}\n- Machine: {machine()}\n"
               f"- Command: `{command}`\n\n{body.strip()}\n")
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def in_child(code: str) -> None:
    """Runs preparation (generating, ingesting) in a child process. Linux carries a process's peak
    RSS across fork and exec, so a parent that grew before spawning the measured child would leak
    its own peak into the child's measurement; the parent of a benchmark stays small."""
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {root!r}); {code}"], check=True)


def measured(script: str, args: list[str], out: Path) -> dict:
    """Runs `script --child ... --out out` in its own process and returns the JSON it wrote, with
    the child's own peak RSS (from wait4) as `peak_rss_mb`."""
    import json
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, script, *args, "--out", str(out)])
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{script} {' '.join(args)} failed with status {status}")
    return {**json.loads(out.read_text()), "peak_rss_mb": usage.ru_maxrss / 1024}  # Linux: kilobytes


def ingested_workspace(root: Path, persons: int):
    """`root/ws` with a generated university of `persons` (seed 42) ingested, made once in a child
    process and reused by every benchmark that asks for the same folder."""
    from campus_kg.workspace import Workspace

    ws = Workspace.at(root / "ws")
    if not ws.lakehouse.exists():
        print(f"generating and ingesting {persons} persons …", flush=True)
        in_child("from rich.console import Console; from campus_kg import pipeline; "
                 "from campus_kg.workspace import Workspace; from ingest.synthetic import generate; "
                 f"g = generate({str(root / 'sources')!r}, persons={persons}, seed=42); "
                 f"pipeline.run_ingest(g.mapping_path, Workspace.at({str(ws.root)!r}), Console(quiet=True))")
    return ws


def prepared_workspace(root: Path, persons: int):
    """ingested_workspace, resolved as well (once)."""
    ws = ingested_workspace(root, persons)
    if not (ws.root / "model" / "person.json").exists():
        print(f"resolving {persons} persons …", flush=True)
        in_child("from rich.console import Console; from campus_kg import pipeline; "
                 "from campus_kg.workspace import Workspace; "
                 f"pipeline.run_resolve(Workspace.at({str(ws.root)!r}), Console(quiet=True))")
    return ws


def auditor_token_and_persons(workspace: Path, tmp: Path, name: str) -> tuple[str, list[str]]:
    """A fresh auditor token for the workspace and every master person ID, shuffled (seed 7), made in a
    child process so the benchmark's parent stays small."""
    import json

    token_file, ids_file = tmp / f"{name}.token", tmp / f"{name}.ids.json"
    in_child("import json, random; from campus_kg.settings import Settings; from campus_kg.state import StateStore; "
             "from ingest.lakehouse import Lakehouse; "
             f"s = Settings(workspace={str(workspace)!r}); "
             "st = StateStore(s.state_database_url(), s.token_secret.get_secret_value()); "
             f"open({str(token_file)!r}, 'w').write(st.add_user({name!r}, 'auditor')[1]); "
             f"lake = Lakehouse({str(workspace / 'lakehouse.duckdb')!r}, read_only=True); "
             "ids = [r[0] for r in lake.con.execute(\"SELECT DISTINCT master_id FROM res_link "
             "WHERE entity_type = 'Person'\").fetchall()]; lake.close(); "
             f"random.Random(7).shuffle(ids); json.dump(ids, open({str(ids_file)!r}, 'w'))")
    return token_file.read_text().strip(), json.loads(ids_file.read_text())
