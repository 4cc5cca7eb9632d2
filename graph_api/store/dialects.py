"""What differs between Cypher backends, one class per backend. No `if backend ==` elsewhere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ontology.schema import GraphSchema, NodeTable, RelTable


class Dialect(ABC):
    name: str

    @abstractmethod
    def schema_statements(self, schema: GraphSchema) -> list[str]:
        """DDL (Ladybug) or constraints and indexes (Neo4j) for the whole schema."""

    @abstractmethod
    def node_load_statement(self, table: NodeTable) -> str: ...

    @abstractmethod
    def rel_load_statement(self, rel: RelTable, from_label: str, to_label: str) -> str: ...

    def delete_nodes_statement(self, table: NodeTable) -> str:
        # UNWIND + a key lookup uses the primary-key index; `WHERE n.id IN $keys` scans the whole label.
        return f"UNWIND $keys AS k MATCH (n:{table.label} {{{table.key}: k}}) DETACH DELETE n"

    def to_python(self, value: Any) -> Any:
        """Driver value -> plain Python (dates, lists, maps)."""
        if isinstance(value, list):
            return [self.to_python(v) for v in value]
        if isinstance(value, dict):
            return {k: self.to_python(v) for k, v in value.items()}
        return value


def graph_element(properties: dict[str, Any], label: str | None) -> dict[str, Any]:
    """A node or relationship as every backend returns it: its set properties and `_LABEL`.
    Ladybug lists every column of the node table (null where unset) and its internal IDs; Neo4j only
    the properties a node has. Both become the same dict, so one answer fits every backend."""
    out = {k: v for k, v in properties.items() if v is not None and not k.startswith("_")}
    out["_LABEL"] = label
    return out


class LadybugDialect(Dialect):
    name = "ladybug"
    INTERNAL = ("_ID", "_SRC", "_DST")
    TYPES = {"string": "STRING", "date": "DATE", "timestamp": "TIMESTAMP", "int": "INT64",
             "double": "DOUBLE", "bool": "BOOLEAN"}

    def schema_statements(self, schema: GraphSchema) -> list[str]:
        out = []
        for node in schema.nodes.values():
            cols = ", ".join(f"{c.name} {self.TYPES[c.type]}" for c in node.columns)
            out.append(f"CREATE NODE TABLE IF NOT EXISTS {node.label}({cols}, PRIMARY KEY ({node.key}))")
        for rel in schema.rels.values():
            pairs = ", ".join(f"FROM {a} TO {b}" for a, b in rel.pairs)
            cols = "".join(f", {c.name} {self.TYPES[c.type]}" for c in rel.columns)
            out.append(f"CREATE REL TABLE IF NOT EXISTS {rel.type}({pairs}{cols})")
        return out

    def node_load_statement(self, table: NodeTable) -> str:
        return f"COPY {table.label} FROM $data"

    def rel_load_statement(self, rel: RelTable, from_label: str, to_label: str) -> str:
        return f"COPY {rel.type} FROM $data (from='{from_label}', to='{to_label}')"

    def to_python(self, value: Any) -> Any:
        if isinstance(value, dict) and "_LABEL" in value and "_ID" in value:  # a node or relationship
            return super().to_python(graph_element(value, value["_LABEL"]))
        return super().to_python(value)


class Neo4jDialect(Dialect):
    name = "neo4j"
    # Properties looked up by value (not only by key) get an index.
    LOOKUP_PROPERTIES = ("staff_no", "student_no", "id_number", "name", "record_key")

    def schema_statements(self, schema: GraphSchema) -> list[str]:
        out = []
        for node in schema.nodes.values():
            out.append(
                f"CREATE CONSTRAINT {node.label.lower()}_{node.key}_unique IF NOT EXISTS "
                f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE"
            )
            for col in node.column_names:
                if col in self.LOOKUP_PROPERTIES:
                    out.append(
                        f"CREATE INDEX {node.label.lower()}_{col} IF NOT EXISTS FOR (n:{node.label}) ON (n.{col})"
                    )
        return out

    # Loads send a batch as one list per column (`$cols[j][i]`), not a map per row: the driver packs
    # lists of plain values far faster than millions of small dicts. A null leaves the property unset.
    # Dates and timestamps travel as ISO text and are parsed by the server (`WIRE_AS_TEXT`): the driver
    # packs a Python datetime ~4× slower than the whole rest of a statement row.
    # CREATE, not MERGE: a build loads into an empty store, and a patch deletes what it reloads.
    WIRE_AS_TEXT = {"date": "date", "timestamp": "localdatetime"}

    def _value(self, column, j: int) -> str:
        parse = self.WIRE_AS_TEXT.get(column.type)
        return f"{parse}($cols[{j}][i])" if parse else f"$cols[{j}][i]"

    def node_load_statement(self, table: NodeTable) -> str:
        sets = ", ".join(f"n.`{c.name}` = {self._value(c, j)}" for j, c in enumerate(table.columns) if c.name != table.key)
        key = table.column_names.index(table.key)
        return (f"UNWIND range(0, size($cols[{key}]) - 1) AS i CREATE (n:{table.label} {{{table.key}: $cols[{key}][i]}})"
                + (f" SET {sets}" if sets else ""))

    def rel_load_statement(self, rel: RelTable, from_label: str, to_label: str) -> str:
        # Columns: from, to, then the relationship's own properties in schema order.
        sets = ", ".join(f"r.`{c.name}` = {self._value(c, j + 2)}" for j, c in enumerate(rel.columns))
        return (f"UNWIND range(0, size($cols[0]) - 1) AS i "
                f"MATCH (a:{from_label} {{id: $cols[0][i]}}) MATCH (b:{to_label} {{id: $cols[1][i]}}) "
                f"CREATE (a)-[r:{rel.type}]->(b)" + (f" SET {sets}" if sets else ""))

    def to_python(self, value: Any) -> Any:
        native = getattr(value, "to_native", None)
        if native is not None:  # neo4j.time.Date / DateTime
            return native()
        # Nodes and relationships become dicts of their properties with `_LABEL`, as Ladybug gives them.
        if hasattr(value, "items") and hasattr(value, "labels"):  # a Node
            return self.to_python(graph_element(dict(value.items()), next(iter(value.labels), None)))
        if hasattr(value, "items") and hasattr(value, "start_node"):  # a Relationship
            return self.to_python(graph_element(dict(value.items()), value.type))
        return super().to_python(value)

