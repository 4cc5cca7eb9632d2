"""Where a resolve spends its time: wall seconds per stage, and the process's peak RSS at the end of
each stage (this process only: a Spark driver JVM is a process of its own). The benchmarks report
them; `campus-kg resolve` prints them, so a slow run says which stage to look at."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class StageClock:
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    on_start: Callable[[str], None] | None = field(default=None, repr=False)  # e.g. a progress display

    @contextmanager
    def stage(self, name: str):
        if self.on_start is not None:
            self.on_start(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.peak_rss_mb[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def summary(self) -> str:
        return ", ".join(f"{name} {s:.1f} s" for name, s in self.seconds.items())
