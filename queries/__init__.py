"""Saved Cypher queries (`queries/*.cypher`), loaded by name. Each file is plain Cypher in the
subset both backends accept; a leading `//` comment says what it returns. The ones in `write/` change
the graph: the build uses them, and they are not offered to analysts."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

QUERY_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in QUERY_DIR.glob("*.cypher"))


ENTITY = ":Entity"  # in a query: the master class the caller names (labels cannot be parameters)


@lru_cache(maxsize=None)
def load_query(name: str, entity: str | None = None) -> str:
    """The query's text; `entity` replaces its `:Entity` label with that master class."""
    path = QUERY_DIR / f"{name}.cypher"
    if not path.is_file():
        raise KeyError(f"no saved query {name!r} in {QUERY_DIR}")
    text = path.read_text(encoding="utf-8")
    if entity is not None:
        from ontology.model import load_ontology

        if entity not in {c.name for c in load_ontology().master_classes()}:
            raise KeyError(f"{entity!r} is not a master class")
        text = re.sub(rf"{ENTITY}\b", f":{entity}", text)
    return text


def needs_entity(name: str) -> bool:
    return re.search(rf"{ENTITY}\b", load_query(name)) is not None
