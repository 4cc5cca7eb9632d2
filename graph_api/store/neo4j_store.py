"""Neo4j 5 adapter through the official driver: UNWIND batches, reads in auto-commit read transactions."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import neo4j
import pyarrow as pa
import pyarrow.compute as pc

from graph_api.store.base import GraphStore, QueryTimeout
from graph_api.store.dialects import Neo4jDialect
from ontology.schema import GraphSchema, NodeTable, RelTable


class Neo4jStore(GraphStore):
    dialect = Neo4jDialect()

    def __init__(self, schema: GraphSchema, uri: str, user: str, password: str, *, database: str = "neo4j",
                 batch_size: int = 5_000, query_timeout_ms: int = 10_000, write_threads: int = 2):
        super().__init__(schema)
        # Notifications (deprecations, "property key does not exist" on an empty label) would log a
        # warning per query; the answers are what matter here.
        self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password), notifications_min_severity="OFF")
        self._driver.verify_connectivity()
        self._database = database
        self._batch_size = batch_size
        self._parallel = write_threads
        self._timeout_s = query_timeout_ms / 1000

    def clear(self) -> None:
        """Remove every node and relationship (a full rebuild starts from an empty database). The
        relationships go first, then the bare nodes, 50,000 per transaction: on a slot holding a
        30,000-person build that took ~100 s where DETACH DELETE node by node, 10,000 per transaction,
        took ~120-140 s (same server CPU, a fifth of the commits; bench/RESULTS.md)."""
        with self._driver.session(database=self._database) as session:
            session.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS").consume()
            session.run("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS").consume()

    def _execute_schema(self, statement: str) -> None:
        with self._driver.session(database=self._database) as session:
            session.run(statement).consume()

    def _write_batches(self, cypher: str, data: pa.Table) -> int:
        """One write transaction per batch of rows, each batch sent as one list per column, straight
        from Arrow (the columns are already in the order the statement indexes them). Batches go
        in parallel transactions: the server's work per batch is what a load waits on."""
        def write(batch: pa.RecordBatch) -> None:
            cols = [_wire(column).to_pylist() for column in batch.columns]
            with self._driver.session(database=self._database) as session:
                session.execute_write(lambda tx: tx.run(cypher, cols=cols).consume())

        batches = data.to_batches(max_chunksize=self._batch_size)
        if len(batches) == 1:
            write(batches[0])
        else:
            with ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="neo4j-load") as pool:
                for done in pool.map(write, batches):
                    pass
        return data.num_rows

    def _bulk_load_nodes(self, table: NodeTable, data: pa.Table) -> int:
        return self._write_batches(self.dialect.node_load_statement(table), data)

    def _bulk_load_rels(self, rel: RelTable, from_label: str, to_label: str, data: pa.Table) -> int:
        return self._write_batches(self.dialect.rel_load_statement(rel, from_label, to_label), data)

    def _run_read(self, cypher: str, parameters: dict[str, Any], max_rows: int | None) -> list[dict[str, Any]]:
        # An auto-commit transaction in read mode: RUN and PULL go out together, one round trip, where a
        # managed read transaction adds BEGIN and COMMIT. The server still refuses any write in it.
        query = neo4j.Query(cypher, timeout=self._timeout_s)
        with self._driver.session(database=self._database, default_access_mode=neo4j.READ_ACCESS) as session:
            try:
                return [dict(r) for r in itertools.islice(session.run(query, parameters), max_rows)]
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


def _wire(column: pa.Array) -> pa.Array:
    """Dates and timestamps as ISO text, which the load statement parses (Neo4jDialect.WIRE_AS_TEXT)."""
    if pa.types.is_timestamp(column.type):
        # Formatted once per distinct value: a build's timestamps are its few ingest runs' start times,
        # and strftime per row was most of the time a load spent preparing a frame.
        distinct = column.dictionary_encode()
        return pc.take(pc.strftime(distinct.dictionary, format="%Y-%m-%dT%H:%M:%S"), distinct.indices)
    if pa.types.is_date(column.type):
        return column.cast(pa.string())
    return column
