"""One test body, every graph backend: Ladybug always, Neo4j at NEO4J_URI.

`make test` starts a real Neo4j 5 (tools/neo4j-server) and sets CAMPUS_KG_REQUIRE_NEO4J: there a
missing server fails the Neo4j tests loudly. Run by hand without a server, they are skipped with
the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NEO4J_REQUIRED = bool(os.environ.get("CAMPUS_KG_REQUIRE_NEO4J"))
NEO4J_MISSING = "NEO4J_URI is not set: no Neo4j server (run `make neo4j-up`, or `make test` which starts one)"


def neo4j_param():
    if os.environ.get("NEO4J_URI") or NEO4J_REQUIRED:
        return pytest.param("neo4j", id="neo4j", marks=pytest.mark.neo4j)
    return pytest.param("neo4j", id="neo4j", marks=[pytest.mark.neo4j, pytest.mark.skip(reason=NEO4J_MISSING)])


BACKENDS = [pytest.param("ladybug", id="ladybug"), neo4j_param()]

each_backend = pytest.mark.parametrize("backend", BACKENDS)


def use_own_neo4j(worker: str | None) -> None:
    """`make test` runs pytest-xdist workers (gw0, gw1, ...) and starts a Neo4j pair for each under
    CAMPUS_KG_NEO4J_STATES/<worker>: tests clear and rebuild their server, so two workers may not
    share one. Points this process's NEO4J_* at its own pair."""
    states = os.environ.get("CAMPUS_KG_NEO4J_STATES")
    if not worker or not states:
        return
    env = Path(states) / worker / "env"
    if not env.is_file():
        raise RuntimeError(f"{env} is missing: no Neo4j was started for xdist worker {worker} "
                           f"(make test starts one per worker; TEST_WORKERS must match -n)")
    for line in env.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("NEO4J_"):
            os.environ[key] = value


def require_neo4j() -> None:
    """Called by fixtures that open Neo4j: fails (not skips) when make test promised a server."""
    if not os.environ.get("NEO4J_URI"):
        pytest.fail(NEO4J_MISSING)
