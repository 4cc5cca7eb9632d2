"""The production path (docker-compose.yml + Dockerfile) holds what docs/api.md and the README promise:
a pinned Neo4j 5.26 pair with health checks and volumes, an API image built once that runs as a
non-root user, and nothing installed at container start. `docker compose config` checks the file
where the compose CLI exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_neo4j_servers_are_pinned_healthy_and_keep_their_data():
    services = _compose()["services"]
    neo4j = {name: s for name, s in services.items() if "neo4j" in s.get("image", "")}
    assert len(neo4j) == 2, "two Neo4j servers take turns (blue / green) so a rebuild is never served half-built"
    for name, service in neo4j.items():
        assert service["image"].startswith("neo4j:5.26"), f"{name}: pin the 5.26 LTS image"
        assert "apoc" in service["environment"]["NEO4J_PLUGINS"]
        assert service["healthcheck"]["test"], f"{name} has no health check"
        assert any(v.endswith(":/data") for v in service["volumes"]), f"{name} keeps no data volume"
        assert "ports" not in service, f"{name} must not be published outside the compose network"


def test_the_api_is_built_once_runs_as_non_root_and_waits_for_the_graph():
    services = _compose()["services"]
    api, build = services["api"], services["graph-build"]
    for service in (api, build):
        assert service["build"] == "." and "pip install" not in str(service.get("command", ""))
        assert service["environment"]["CAMPUS_KG_NEO4J_STANDBY_URI"] != service["environment"]["CAMPUS_KG_NEO4J_URI"]
    assert api["depends_on"]["graph-build"]["condition"] == "service_completed_successfully"
    assert all(dep["condition"] == "service_healthy" for name, dep in api["depends_on"].items() if "neo4j" in name)
    assert all(p.startswith("127.0.0.1:") for p in api["ports"]), "publish the API on loopback; a proxy fronts it"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the API container must not run as root"
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(_compose_cli() is None, reason="no docker compose CLI on this machine")
def test_docker_compose_accepts_the_file(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    done = subprocess.run([*_compose_cli(), "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
