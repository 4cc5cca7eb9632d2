"""Ladybug (embedded Kùzu fork) adapter: one database file per graph build."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import ladybug
import pyarrow as pa

from graph_api.store.base import GraphStore, GraphStoreError, QueryTimeout
from graph_api.store.dialects import LadybugDialect
from ontology.schema import GraphSchema, NodeTable, RelTable

LADYBUG_TYPES = {"string": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
                 "int": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}


class LadybugStore(GraphStore):
    dialect = LadybugDialect()

    def __init__(self, schema: GraphSchema, path: Path, *, read_only: bool = False, query_timeout_ms: int = 0,
                 buffer_pool_mb: int = 0, connections: int = 1, query_threads: int = 0):
        super().__init__(schema)
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise GraphStoreError(f"no graph database at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0: Ladybug's default, most of the machine's memory; a limit keeps a build beside other work.
        # query_threads 0: every core for each query (builds); the served graph's small lookups run
        # faster on one thread each, in parallel over its connections.
        self._db = ladybug.Database(str(self.path), read_only=read_only, buffer_pool_size=buffer_pool_mb * 2**20,
                                    max_num_threads=query_threads)
        # One connection per concurrent reader: a Ladybug connection runs one query at a time, and
        # the database answers several connections in parallel.
        self._pool: queue.SimpleQueue[ladybug.Connection] = queue.SimpleQueue()
        self._all = [ladybug.Connection(self._db) for _ in range(max(connections, 1))]
        for conn in self._all:
            if query_timeout_ms:
                conn.set_query_timeout(query_timeout_ms)
            self._pool.put(conn)
        self._conn = self._all[0]  # loads and writes: one writer

    def _execute_schema(self, statement: str) -> None:
        self._conn.execute(statement)

    def _bulk_load_nodes(self, table: NodeTable, data: pa.Table) -> int:
        types = {c.name: c.type for c in table.columns}
        self._conn.execute(self.dialect.node_load_statement(table), {"data": _cast(data, types)})
        return data.num_rows

    def _bulk_load_rels(self, rel: RelTable, from_label: str, to_label: str, data: pa.Table) -> int:
        types = {"from": "string", "to": "string", **{c.name: c.type for c in rel.columns}}
        self._conn.execute(self.dialect.rel_load_statement(rel, from_label, to_label), {"data": _cast(data, types)})
        return data.num_rows

    def _run_read(self, cypher: str, parameters: dict[str, Any], max_rows: int | None) -> list[dict[str, Any]]:
        return self._run_reads([cypher], parameters, max_rows)[0]

    def _run_reads(self, statements: list[str], parameters: dict[str, Any],
                   max_rows: int | None = None) -> list[list[dict[str, Any]]]:
        """The statements one after another on one connection of the pool (taken once: under load the
        pool's queue is contended)."""
        conn = self._pool.get()
        try:
            return [self._read_on(conn, cypher, parameters, max_rows) for cypher in statements]
        except RuntimeError as exc:
            if "interrupted" in str(exc).lower():
                raise QueryTimeout(str(exc)) from None
            raise
        finally:
            self._pool.put(conn)

    @staticmethod
    def _read_on(conn: ladybug.Connection, cypher: str, parameters: dict[str, Any],
                 max_rows: int | None) -> list[dict[str, Any]]:
        result = conn.execute(cypher, parameters)
        if isinstance(result, list):  # several statements: Ladybug ran them all; answer none
            raise GraphStoreError("one statement per query")
        columns = result.get_column_names()
        rows = []
        while result.has_next() and (max_rows is None or len(rows) < max_rows):
            rows.append(dict(zip(columns, result.get_next(), strict=True)))
        result.close()
        return rows

    def _run_write_batch(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        self._conn.execute("BEGIN TRANSACTION")
        try:
            for cypher, params in statements:
                self._conn.execute(cypher, params)
        except Exception:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _close(self) -> None:
        for conn in self._all:
            conn.close()
        self._db.close()


def _cast(data: pa.Table, types: dict[str, str]) -> pa.Table:
    return data.cast(pa.schema([(name, LADYBUG_TYPES[types[name]]) for name in data.column_names]))
