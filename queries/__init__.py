"""Saved Cypher queries (`queries/*.cypher`), loaded by name. Each file is plain Cypher in the
subset both backends accept; a leading `//` comment says what it returns. The ones in `write/` change
the graph: the build uses them, and they are not offered to analysts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

QUERY_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in QUERY_DIR.glob("*.cypher"))


@lru_cache(maxsize=None)
def load_query(name: str) -> str:
    path = QUERY_DIR / f"{name}.cypher"
    if not path.is_file():
        raise KeyError(f"no saved query {name!r} in {QUERY_DIR}")
    return path.read_text(encoding="utf-8")
