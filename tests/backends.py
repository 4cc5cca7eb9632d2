"""One test body, every graph backend available: Ladybug always, Neo4j when NEO4J_URI is set."""

from __future__ import annotations

import os

import pytest

BACKENDS = [
    pytest.param("ladybug", id="ladybug"),
    pytest.param("neo4j", id="neo4j", marks=pytest.mark.skipif(
        not os.environ.get("NEO4J_URI"), reason="NEO4J_URI is not set: no Neo4j server to run the contract against")),
]

each_backend = pytest.mark.parametrize("backend", BACKENDS)
