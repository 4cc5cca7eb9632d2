"""A Neo4j full build by offline import: the standby's store is replaced, not loaded row by row.

Loading ~1 M nodes and ~2 M relationships with UNWIND costs the server a transaction, an index
update and a lookup of both ends per row; `neo4j-admin database import full` writes the store files
directly. The local server (tools/neo4j-server) runs that import itself when a client drops CSV
files and a REQUEST file into its inbox, `<neo4j_import_dir>/<port>` (the Bolt port of the slot):
it takes that database offline, replaces it, starts it again and answers in RESULT. So this store
only writes files while the build's frames arrive; the import runs when it is closed, then the
constraints and indexes are created (populated in bulk, faster than maintained row by row) and the
build waits until they are online. A build that fails before the close imports nothing.

Where no such inbox exists (docker-compose's Neo4j image) builds load with UNWIND (Neo4jStore).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import neo4j
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graph_api.store.base import GraphStore, GraphStoreError
from graph_api.store.dialects import Neo4jDialect
from graph_api.store.neo4j_store import _wire
from ontology.schema import GraphSchema, NodeTable, RelTable

# The importer's header types for the ontology's column types (dates and timestamps as ISO text, _wire).
IMPORT_TYPES = {"string": "string", "int": "long", "double": "double", "bool": "boolean", "date": "date",
                "timestamp": "localdatetime"}


def import_inbox(import_dir: Path, uri: str) -> Path:
    """The inbox of the server answering at `uri`: one per Bolt port (each slot is its own DBMS)."""
    port = urlsplit(uri).port
    inbox = import_dir / str(port)
    if port is None or not inbox.is_dir():
        raise GraphStoreError(f"no Neo4j import inbox {inbox} for {uri}: neo4j_import_dir must be the "
                              "`imports` directory of the tools/neo4j-server that serves this URI")
    return inbox


class Neo4jImportStore(GraphStore):
    """Write-only until closed: frames become CSV files; `close()` imports them and creates the schema."""

    dialect = Neo4jDialect()

    def __init__(self, schema: GraphSchema, uri: str, user: str, password: str, inbox: Path, *,
                 timeout_s: float = 1800, index_timeout_s: int = 1800):
        super().__init__(schema)
        self._uri, self._auth, self._inbox = uri, (user, password), inbox
        self._timeout_s, self._index_timeout_s = timeout_s, index_timeout_s
        self._schema_statements: list[str] = []
        self._files: list[str] = []  # the REQUEST's lines
        self._multiline = False  # a value with a line break: the importer must parse quotes across lines
        self._closed = False
        # A stale answer or half-written files from a killed build are not this build's.
        (inbox / "RESULT").unlink(missing_ok=True)
        for csv in inbox.glob("*.csv"):
            csv.unlink()

    def reset(self) -> None:
        """Empties the store now (the import replaces it anyway; a killed build then leaves it empty)."""
        self._replace([])

    # ---- hooks --------------------------------------------------------------------------------
    def _execute_schema(self, statement: str) -> None:
        self._schema_statements.append(statement)  # after the import: populated once, in bulk

    def _bulk_load_nodes(self, table: NodeTable, data: pa.Table) -> int:
        header = [f"{c.name}:ID({table.label})" if c.name == table.key else f"{c.name}:{IMPORT_TYPES[c.type]}"
                  for c in table.columns]
        return self._write(f"--nodes={table.label}", header, data)

    def _bulk_load_rels(self, rel: RelTable, from_label: str, to_label: str, data: pa.Table) -> int:
        header = [f":START_ID({from_label})", f":END_ID({to_label})",
                  *(f"{c.name}:{IMPORT_TYPES[c.type]}" for c in rel.columns)]
        return self._write(f"--relationships={rel.type}", header, data)

    def _run_read(self, cypher: str, parameters: dict[str, Any], max_rows: int | None) -> list[dict[str, Any]]:
        raise GraphStoreError("an offline Neo4j import is read once it is closed (imported), through the served graph")

    def _run_write_batch(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        raise GraphStoreError("an offline Neo4j import only takes whole frames (load_nodes / load_rels)")

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._replace((["--multiline-fields=true"] if self._multiline else []) + self._files)
        with neo4j.GraphDatabase.driver(self._uri, auth=self._auth, notifications_min_severity="OFF") as driver:
            with driver.session() as session:
                for statement in self._schema_statements:
                    session.run(statement).consume()
                session.run("CALL db.awaitIndexes($s)", s=self._index_timeout_s).consume()

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # a failed build imports nothing; what it wrote goes
            self._closed = True
            for csv in self._inbox.glob("*.csv"):
                csv.unlink(missing_ok=True)

    # ---- helpers ------------------------------------------------------------------------------
    def _write(self, argument: str, header: list[str], data: pa.Table) -> int:
        name = f"{len(self._files):03d}-{argument.split('=', 1)[1]}.csv"
        path = self._inbox / name
        wired = pa.table([_wire(data.column(i).combine_chunks()) for i in range(data.num_columns)], names=header)
        self._multiline = self._multiline or any(
            pc.any(pc.match_substring(column, eol)).as_py() for column in wired.columns
            if pa.types.is_string(column.type) for eol in ("\n", "\r"))
        with path.open("wb") as out:
            out.write((",".join(header) + "\n").encode())
            # Nulls are written as nothing (no property); empty strings as "" (an empty string).
            pacsv.write_csv(wired, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        self._files.append(f"{argument}={name}")
        return data.num_rows

    def _replace(self, lines: list[str]) -> None:
        """Asks the server to replace the store by these files (none: an empty store) and waits for it."""
        request = self._inbox / "REQUEST.tmp"
        request.write_text("".join(f"{line}\n" for line in lines))
        request.replace(self._inbox / "REQUEST")
        answer = self._inbox / "RESULT"
        deadline = time.monotonic() + self._timeout_s
        while not answer.exists():
            if time.monotonic() > deadline:
                raise GraphStoreError(f"the Neo4j server did not answer the import request in {self._inbox} "
                                      f"within {self._timeout_s:.0f} s (is tools/neo4j-server running?)")
            time.sleep(0.05)
        outcome = answer.read_text().strip()
        answer.unlink()
        if not outcome.startswith("ok"):
            raise GraphStoreError(f"Neo4j offline import into {self._uri} {outcome}")
        self._wait_for_bolt(deadline)

    def _wait_for_bolt(self, deadline: float) -> None:
        while True:
            try:
                with neo4j.GraphDatabase.driver(self._uri, auth=self._auth) as driver:
                    driver.verify_connectivity()
                    return
            except neo4j.exceptions.ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
