"""Neo4j 5 adapter through the official driver: UNWIND batches, reads in read transactions."""

from __future__ import annotations

import itertools
from typing import Any

import neo4j
import pyarrow as pa

from graph_api.store.base import GraphStore, QueryTimeout
from graph_api.store.dialects import Neo4jDialect
from ontology.schema import GraphSchema, NodeTable, RelTable


class Neo4jStore(GraphStore):
    dialect = Neo4jDialect()

    def __init__(self, schema: GraphSchema, uri: str, user: str, password: str, *, database: str = "neo4j",
                 batch_size: int = 20_000, query_timeout_ms: int = 10_000):
        super().__init__(schema)
        self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password))
        self._driver.verify_connectivity()
        self._database = database
        self._batch_size = batch_size
        self._timeout_s = query_timeout_ms / 1000

    def clear(self) -> None:
        """Remove every node and relationship (a full rebuild starts from an empty database)."""
        with self._driver.session(database=self._database) as session:
            session.run("MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    def _execute_schema(self, statement: str) -> None:
        with self._driver.session(database=self._database) as session:
            session.run(statement).consume()

    def _write_batches(self, cypher: str, rows: list[dict[str, Any]]) -> int:
        with self._driver.session(database=self._database) as session:
            for start in range(0, len(rows), self._batch_size):
                batch = rows[start : start + self._batch_size]
                session.execute_write(lambda tx, b=batch: tx.run(cypher, rows=b).consume())
        return len(rows)

    def _bulk_load_nodes(self, table: NodeTable, data: pa.Table) -> int:
        rows = [{k: v for k, v in r.items() if v is not None} for r in data.to_pylist()]
        return self._write_batches(self.dialect.node_load_statement(table), rows)

    def _bulk_load_rels(self, rel: RelTable, from_label: str, to_label: str, data: pa.Table) -> int:
        rows = [
            {"from": r.pop("from"), "to": r.pop("to"), "props": {k: v for k, v in r.items() if v is not None}}
            for r in data.to_pylist()
        ]
        return self._write_batches(self.dialect.rel_load_statement(rel, from_label, to_label), rows)

    def _run_read(self, cypher: str, parameters: dict[str, Any], max_rows: int | None) -> list[dict[str, Any]]:
        query = neo4j.Query(cypher, timeout=self._timeout_s)

        def work(tx: neo4j.ManagedTransaction) -> list[dict[str, Any]]:
            # A read transaction: the server itself refuses any write in it.
            return [dict(r) for r in itertools.islice(tx.run(query, parameters), max_rows)]

        with self._driver.session(database=self._database, default_access_mode=neo4j.READ_ACCESS) as session:
            try:
                return session.execute_read(work)
            except neo4j.exceptions.ClientError as exc:
                if "TransactionTimedOut" in (exc.code or ""):
                    raise QueryTimeout(exc.message) from None
                raise

    def _run_write_batch(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        def work(tx: neo4j.ManagedTransaction) -> None:
            for cypher, params in statements:
                tx.run(cypher, params).consume()

        with self._driver.session(database=self._database) as session:
            session.execute_write(work)

    def _close(self) -> None:
        self._driver.close()
