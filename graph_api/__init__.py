"""The graph: a store port with Ladybug and Neo4j adapters, the graph build, and the HTTP API."""
