"""The graph-store port: template methods (final) around a handful of backend hooks.

Like Splink's DatabaseAPI: callers use the public methods, which validate against the ontology's
schema and then call the `_hook` methods that each adapter implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple, final

import pyarrow as pa

from graph_api.store.dialects import Dialect
from ontology.schema import GraphSchema, NodeTable, RelTable


class GraphStoreError(RuntimeError):
    pass


class QueryTimeout(GraphStoreError):
    """A query ran past the store's timeout and was stopped."""


class PersonRead(NamedTuple):
    """Everything a person's record shows, as GraphStore.person_read answers it: the master node, then
    each part's rows with the columns dialects.PERSON_PARTS names for it."""
    person: dict[str, Any] | None  # the master node (None: no Person has the ID)
    statements: list[dict[str, Any]]  # current statements, each with its source record and system
    sources: list[dict[str, Any]]  # source records resolved to the person, with the linking rule
    relationships: list[dict[str, Any]]  # {"rel", "other"}: what the person points to
    advisors: list[dict[str, Any]]  # who advises the person


class GraphStore(ABC):
    dialect: Dialect

    def __init__(self, schema: GraphSchema):
        self.schema = schema

    # ---- template methods ---------------------------------------------------------------------
    @final
    def apply_schema(self) -> None:
        for statement in self.dialect.schema_statements(self.schema):
            self._execute_schema(statement)

    @final
    def load_nodes(self, label: str, data: pa.Table) -> int:
        table = self._node_table(label)
        unknown = set(data.column_names) - set(table.column_names)
        if unknown:
            raise GraphStoreError(f"{label}: columns {sorted(unknown)} are not in the ontology")
        if data.num_rows == 0:
            return 0
        return self._bulk_load_nodes(table, _conform(data, table.column_names))

    @final
    def load_rels(self, rel_type: str, from_label: str, to_label: str, data: pa.Table) -> int:
        """`data` has columns `from`, `to` (node keys) and any of the relationship's properties."""
        rel = self._rel_table(rel_type)
        if (from_label, to_label) not in rel.pairs:
            raise GraphStoreError(f"{rel_type} does not connect {from_label} to {to_label} in the ontology")
        unknown = set(data.column_names) - {"from", "to", *rel.column_names}
        if unknown:
            raise GraphStoreError(f"{rel_type}: columns {sorted(unknown)} are not in the ontology")
        if data.num_rows == 0:
            return 0
        return self._bulk_load_rels(rel, from_label, to_label, _conform(data, ("from", "to", *rel.column_names)))

    @final
    def query(self, cypher: str, parameters: dict[str, Any] | None = None,
              max_rows: int | None = None) -> list[dict[str, Any]]:
        """Run a read query; rows come back as dicts of plain Python values, at most `max_rows` of them."""
        rows = self._run_read(cypher, parameters or {}, max_rows)
        return [{k: self.dialect.to_python(v) for k, v in row.items()} for row in rows]

    @final
    def person_read(self, person_id: str) -> PersonRead:
        """A master person's whole record in one call on one connection, however the backend's dialect
        splits it into statements (Neo4j: one statement, one round trip)."""
        statements = self.dialect.person_read_statements()
        answers = self._run_reads([cypher for _, cypher in statements], {"id": person_id})
        parts: dict[str, Any] = {"person": None}
        for (part, _), rows in zip(statements, answers, strict=True):
            if part == "*":
                parts.update(rows[0] if rows else {})
            elif part == "person":
                parts["person"] = rows[0]["person"] if rows else None
            else:
                parts[part] = rows
        if parts["person"] is None:
            return PersonRead(None, [], [], [], [])
        return PersonRead(**{field: self.dialect.to_python(parts.get(field, [])) for field in PersonRead._fields})

    @final
    def write(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        """Run write statements in one transaction where the backend allows."""
        self._run_write_batch(statements)

    @final
    def delete_nodes(self, label: str, keys: list[str]) -> None:
        """Deletes the nodes of `label` with these keys, and every relationship they have."""
        if keys:
            self._run_write_batch([(self.dialect.delete_nodes_statement(self._node_table(label)), {"keys": keys})])

    @final
    def count(self, label: str) -> int:
        self._node_table(label)
        rows = self.query(f"MATCH (n:{label}) RETURN count(n) AS n")
        return int(rows[0]["n"])

    @final
    def count_rels(self, rel_type: str) -> int:
        self._rel_table(rel_type)
        rows = self.query(f"MATCH ()-[r:{rel_type}]->() RETURN count(r) AS n")
        return int(rows[0]["n"])

    def close(self) -> None:
        self._close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- hooks --------------------------------------------------------------------------------
    @abstractmethod
    def _execute_schema(self, statement: str) -> None: ...

    @abstractmethod
    def _bulk_load_nodes(self, table: NodeTable, data: pa.Table) -> int: ...

    @abstractmethod
    def _bulk_load_rels(self, rel: RelTable, from_label: str, to_label: str, data: pa.Table) -> int: ...

    @abstractmethod
    def _run_read(self, cypher: str, parameters: dict[str, Any], max_rows: int | None) -> list[dict[str, Any]]: ...

    def _run_reads(self, statements: list[str], parameters: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Several read statements with the same parameters, as one unit (an adapter may run them on one
        connection); rows as the driver gives them."""
        return [self._run_read(cypher, parameters, None) for cypher in statements]

    @abstractmethod
    def _run_write_batch(self, statements: list[tuple[str, dict[str, Any]]]) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    # ---- helpers ------------------------------------------------------------------------------
    def _node_table(self, label: str) -> NodeTable:
        try:
            return self.schema.node(label)
        except KeyError:
            raise GraphStoreError(f"node label {label!r} is not in the ontology") from None

    def _rel_table(self, rel_type: str) -> RelTable:
        try:
            return self.schema.rel(rel_type)
        except KeyError:
            raise GraphStoreError(f"relationship {rel_type!r} is not in the ontology") from None


def _conform(data: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """All schema columns, in schema order; the ones the data lacks are null."""
    arrays = [
        data.column(c) if c in data.column_names else pa.nulls(data.num_rows, pa.string()) for c in columns
    ]
    return pa.table(arrays, names=list(columns))
