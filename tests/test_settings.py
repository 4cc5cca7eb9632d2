import pytest
from pydantic import ValidationError

from campus_kg.settings import Settings


def test_dev_mode_accepts_defaults():
    assert Settings().token_secret.get_secret_value() == "campus-kg-dev"


def test_prod_refuses_default_and_weak_secrets(monkeypatch):
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    with pytest.raises(ValidationError, match="TOKEN_SECRET"):
        Settings()
    monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", "x" * 40)
    monkeypatch.setenv("CAMPUS_KG_GRAPH_BACKEND", "neo4j")
    monkeypatch.setenv("NEO4J_PASSWORD", "neo4j")
    with pytest.raises(ValidationError, match="Neo4j password"):
        Settings()
    monkeypatch.setenv("NEO4J_PASSWORD", "a-long-and-random-password")
    assert Settings().mode == "prod"
