"""How many examples the fuzzers and the slower property tests draw. `make test` must finish
within 20 minutes on two cores; `make test-all` sets CAMPUS_KG_FUZZ_SCALE=2 and draws twice as
many (about the counts these tests had before they shared `make test`'s budget)."""

from __future__ import annotations

import os

FUZZ_SCALE = float(os.environ.get("CAMPUS_KG_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    """`n` examples at scale 1."""
    return max(1, round(n * FUZZ_SCALE))
