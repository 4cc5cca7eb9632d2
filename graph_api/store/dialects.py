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

    # The function naming a relationship's type (Ladybug: label(r), Neo4j: type(r)).
    REL_TYPE = "label"

    def person_read_statements(self) -> list[tuple[str, str]]:
        """How GraphStore.person_read reads a person's whole record: (part, statement) pairs, run in
        one call on one connection. `part` names the PersonRead field the statement's rows fill
        (`person`: its first row's `person` column); `*` a statement whose one row holds every part
        as a column. By default one statement per part."""
        statements = [("person", "MATCH (p:Person {id: $id}) RETURN p AS person")]
        for part, (pattern, columns) in PERSON_PARTS.items():
            returned = ", ".join(f"{expression} AS {name}" for name, expression in columns.items())
            statements.append((part, f"MATCH (p:Person {{id: $id}}) MATCH {pattern} RETURN {returned}"))
        return [(part, cypher.replace("TYPE_OF(", f"{self.REL_TYPE}(")) for part, cypher in statements]


# A person's record part by part (besides the master node): the pattern from the person `p`, and the
# columns of each row. Written once for both backends; Dialect.person_read_statements puts them
# together. Relationships come back as the properties the record shows (graph_api.person_view.RELATED),
# not whole nodes: an advisee is a Person node of 27 columns, and converting whole nodes was 0.7 of the
# 0.9 ms that part cost on Ladybug.
PERSON_PARTS: dict[str, tuple[str, dict[str, str]]] = {
    "statements": ("(p)<-[:DESCRIBES]-(s:Statement)-[:STATED_IN]->(r:SourceRecord) "
                   "WHERE s.retired_at IS NULL AND s.value IS NOT NULL",
                   {"property": "s.stated_property", "value": "s.value", "chosen": "s.chosen", "rule": "s.rule",
                    "authority": "s.authority", "last_seen": "s.last_seen", "record_id": "r.id",
                    "system": "r.system"}),
    "sources": ("(p)<-[l:RESOLVED_TO]-(r:SourceRecord)",
                {"record_id": "r.id", "system": "r.system", "table_name": "r.table_name",
                 "record_key": "r.record_key", "rule": "l.rule"}),
    "relationships": ("(p)-[r:MEMBER_OF|AUTHOR_OF|LEADS|CUSTODIAN_OF|ADVISES]->(x)",
                      {"rel": "{_LABEL: TYPE_OF(r), role: r.role, start_date: r.start_date, end_date: r.end_date, "
                              "rank: r.rank}",
                       "other": "{id: x.id, name: x.name, title: x.title, publication_year: x.publication_year, "
                                "project_start: x.project_start, funding: x.funding, asset_no: x.asset_no, "
                                "original_value: x.original_value}"}),
    "advisors": ("(x:Person)-[r:ADVISES]->(p)",
                 {"id": "x.id", "title": "x.name", "role": "r.role", "start_date": "r.start_date",
                  "end_date": "r.end_date"}),
}


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

    # person_read_statements: one statement per part (the default), not one for the whole record.
    # Embedded, Ladybug has no round trip to save, and it plans `OPTIONAL MATCH … collect()` chains as
    # hash joins over whole node tables (693 k Statements at 30 k persons): the whole record as one
    # statement measured 10–12 ms against 3–5 ms for the parts, on one connection.


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

    REL_TYPE = "type"

    def person_read_statements(self) -> list[tuple[str, str]]:
        """A person's whole record in one statement: each Bolt statement is a round trip (and a
        transaction), which is what five statements cost here. A COLLECT subquery (Neo4j 5) per part
        keeps each part to its own expansion from the one person."""
        parts = []
        for part, (pattern, columns) in PERSON_PARTS.items():
            row = ", ".join(f"{name}: {expression}" for name, expression in columns.items())
            parts.append(f"COLLECT {{ MATCH {pattern} RETURN {{{row}}} }} AS {part}")
        cypher = "MATCH (p:Person {id: $id})\nRETURN p AS person,\n  " + ",\n  ".join(parts)
        return [("*", cypher.replace("TYPE_OF(", f"{self.REL_TYPE}("))]

