"""Open the configured graph store: the one place that chooses an adapter."""

from __future__ import annotations

from pathlib import Path

from campus_kg.settings import Settings
from graph_api.store.base import GraphStore, GraphStoreError
from ontology.schema import graph_schema


def neo4j_location(settings: Settings, slot: str = "primary") -> tuple[str, str]:
    """The (URI, database) of a Neo4j slot: `primary` (neo4j_uri) or `standby`, where rebuilds load.
    Slots, not URIs, are what a graph pointer names: credentials only ever go to configured servers."""
    if slot == "primary":
        if not settings.neo4j_uri:
            raise GraphStoreError("graph backend is neo4j but NEO4J_URI / CAMPUS_KG_NEO4J_URI is not set")
        return settings.neo4j_uri, settings.neo4j_database
    if slot == "standby":
        if settings.neo4j_standby_uri:
            return settings.neo4j_standby_uri, settings.neo4j_standby_database or settings.neo4j_database
        if settings.neo4j_standby_database and settings.neo4j_uri:
            return settings.neo4j_uri, settings.neo4j_standby_database
        raise GraphStoreError("a Neo4j rebuild loads a standby while the served graph keeps answering: set "
                              "CAMPUS_KG_NEO4J_STANDBY_URI (a second server) or CAMPUS_KG_NEO4J_STANDBY_DATABASE "
                              "(Neo4j Enterprise)")
    raise GraphStoreError(f"unknown Neo4j slot {slot!r}")


def open_store(settings: Settings, *, backend: str | None = None, ladybug_path: Path | None = None,
               read_only: bool = False, connections: int = 1, neo4j_slot: str = "primary") -> GraphStore:
    backend = backend or settings.graph_backend
    schema = graph_schema()
    if backend == "ladybug":
        from graph_api.store.ladybug_store import LadybugStore

        if ladybug_path is None:
            raise GraphStoreError("the Ladybug store needs a database path")
        # The timeout guards the served graph from runaway queries; a build's own writes run to the end.
        return LadybugStore(schema, ladybug_path, read_only=read_only,
                            query_timeout_ms=settings.query_timeout_ms if read_only else 0,
                            buffer_pool_mb=settings.ladybug_buffer_pool_mb, connections=connections,
                            query_threads=settings.graph_query_threads if read_only else 0)
    if backend == "neo4j":
        from graph_api.store.neo4j_store import Neo4jStore

        uri, database = neo4j_location(settings, neo4j_slot)
        return Neo4jStore(
            schema, uri, settings.neo4j_user, settings.neo4j_password.get_secret_value(),
            database=database, batch_size=settings.neo4j_batch_size, write_threads=settings.neo4j_write_threads,
            query_timeout_ms=settings.query_timeout_ms,
        )
    raise GraphStoreError(f"unknown graph backend {backend!r}")


def open_neo4j_import(settings: Settings, neo4j_slot: str) -> GraphStore:
    """A write-only store that replaces the slot's whole database by an offline import when closed
    (graph_api.store.neo4j_import): for full builds, where `neo4j_import_dir` names the server's inboxes."""
    from graph_api.store.neo4j_import import Neo4jImportStore, import_inbox

    if settings.neo4j_import_dir is None:
        raise GraphStoreError("an offline Neo4j import needs neo4j_import_dir (CAMPUS_KG_NEO4J_IMPORT_DIR)")
    uri, _ = neo4j_location(settings, neo4j_slot)
    return Neo4jImportStore(graph_schema(), uri, settings.neo4j_user, settings.neo4j_password.get_secret_value(),
                            import_inbox(settings.neo4j_import_dir, uri))
