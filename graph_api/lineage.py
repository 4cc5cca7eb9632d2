"""Where a value came from, and what it was on a past date (the functions the API calls).

The answer for one attribute of one master entity lists every statement ever made about it
(queries/attribute_lineage.cypher): value as standardised and as written, the source record,
system and load, first and last seen, whether survivorship chose it and by which rule. The value
*as of* a date is chosen again from the statements that held then, by the same rule the
survivorship uses today: the most authoritative source (一数一源), then the most recently seen,
then the value most sources agree on.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from queries import load_query


def entity_label(graph, entity_id: str) -> str | None:
    """The master class of an entity ID, or None when no master entity has it."""
    from ontology.model import load_ontology

    for cls in sorted(load_ontology().master_classes(), key=lambda c: c.name != "Person"):  # most asked first
        if graph.query(f"MATCH (n:{cls.name} {{id: $id}}) RETURN n.id AS id", {"id": entity_id}):
            return cls.name
    return None


def attribute_lineage(graph, entity_id: str, prop: str, as_of: dt.datetime | None = None,
                      entity_type: str | None = None) -> dict[str, Any]:
    entity_type = entity_type or entity_label(graph, entity_id) or "Person"
    statements = graph.query(load_query("attribute_lineage", entity_type), {"entity_id": entity_id, "property": prop})
    systems = source_systems(graph)
    for s in statements:
        s["system_name"] = systems.get(s["system"], {}).get("name")
    chosen = next((s for s in statements if s["chosen"]), None)
    answer: dict[str, Any] = {
        "entity_id": entity_id, "property": prop, "statements": statements,
        "value": chosen["value"] if chosen else None, "rule": chosen["rule"] if chosen else None,
    }
    if as_of is not None:
        held = [s for s in statements if held_at(s, as_of)]
        answer["as_of"] = as_of.isoformat()
        answer["value_as_of"] = choose(held)
    return answer


def source_systems(graph) -> dict[str, dict]:
    """System code -> its name and department (a handful of nodes; once per served build)."""
    def compute() -> dict[str, dict]:
        return {r["system"]: r for r in graph.query(load_query("source_systems"))}

    memo = getattr(graph, "memo", None)
    return memo("source_systems", compute) if memo else compute()


def held_at(statement: dict, when: dt.datetime) -> bool:
    """Loaded by then, and not yet found gone."""
    first, retired = statement["first_seen"], statement["retired_at"]
    return first is not None and first <= when and (retired is None or retired > when)


def choose(statements: list[dict]) -> str | None:
    """Authority first (rank 1 wins), then recency, then agreement."""
    if not statements:
        return None
    support = Counter(s["value"] for s in statements if s["value"] is not None)
    candidates = [s for s in statements if s["value"] is not None]
    if not candidates:
        return None
    best = min(candidates, key=lambda s: (s["authority"] if s["authority"] is not None else 99,
                                          -(s["last_seen"].timestamp() if s["last_seen"] else 0),
                                          -support[s["value"]], s["value"]))
    return best["value"]


def entity_history(graph, entity_id: str) -> dict[str, Any]:
    """Whether an ID is current, merged (and into what) or retired, and which IDs merged into it."""
    rows = graph.query(load_query("entity_history"), {"id": entity_id})
    own = next((r for r in rows if r["former_id"] == entity_id), None)
    absorbed = [r for r in rows if r["merged_into"] == entity_id and r["former_id"] != entity_id]
    return {"id": entity_id, "status": own["status"] if own else "active",
            "merged_into": own["merged_into"] if own else None, "changed_at": own["changed_at"] if own else None,
            "absorbed": absorbed}
