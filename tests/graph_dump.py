"""Every node and relationship of a graph store as sorted rows: two graphs are equal when their dumps are."""

from __future__ import annotations

from graph_api.store import GraphStore


def dump(store: GraphStore) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for label, table in store.schema.nodes.items():
        cols = ", ".join(f"n.{c} AS {c}" for c in table.column_names)
        out[label] = sorted(tuple(str(v) for v in row.values())
                            for row in store.query(f"MATCH (n:{label}) RETURN {cols}"))
    for rel_type, rel in store.schema.rels.items():
        for a, b in rel.pairs:
            props = "".join(f", r.{c} AS {c}" for c in rel.column_names)
            rows = store.query(f"MATCH (a:{a})-[r:{rel_type}]->(b:{b}) RETURN a.id AS f, b.id AS t{props}")
            if rows:
                out[f"{a}-{rel_type}->{b}"] = sorted(tuple(str(v) for v in row.values()) for row in rows)
    return out
