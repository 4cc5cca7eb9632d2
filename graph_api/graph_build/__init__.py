"""The graph build: the lakehouse and the resolution outputs become a served graph (full or patched),
its analyst projection and the person records precomputed beside it; and the RDF export."""
