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
