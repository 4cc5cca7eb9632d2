"""The graph, in two jobs: building it (`graph_build/`) and serving it over HTTP (the app, its routers and the
web pages in `ui/`), both through the store port (`store/`) with Ladybug and Neo4j adapters."""
