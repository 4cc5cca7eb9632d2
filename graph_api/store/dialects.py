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


class LadybugDialect(Dialect):
    name = "ladybug"
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

    def node_load_statement(self, table: NodeTable) -> str:
        return f"UNWIND $rows AS row MERGE (n:{table.label} {{{table.key}: row.{table.key}}}) SET n += row"

    def rel_load_statement(self, rel: RelTable, from_label: str, to_label: str) -> str:
        return (
            f"UNWIND $rows AS row MATCH (a:{from_label} {{id: row.`from`}}) MATCH (b:{to_label} {{id: row.`to`}}) "
            f"CREATE (a)-[r:{rel.type}]->(b) SET r += row.props"
        )

    def to_python(self, value: Any) -> Any:
        native = getattr(value, "to_native", None)
        if native is not None:  # neo4j.time.Date / DateTime
            return native()
        # Nodes and relationships become dicts of their properties with `_LABEL`, as Ladybug gives them.
        if hasattr(value, "items") and hasattr(value, "labels"):  # a Node
            return self.to_python({**dict(value.items()), "_LABEL": next(iter(value.labels), None)})
        if hasattr(value, "items") and hasattr(value, "start_node"):  # a Relationship
            return self.to_python({**dict(value.items()), "_LABEL": value.type})
        return super().to_python(value)

