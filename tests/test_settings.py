import secrets

import pytest
from pydantic import ValidationError

from campus_kg.secret_strength import example_values
from campus_kg.settings import Settings

STRONG = secrets.token_urlsafe(32)


def test_dev_mode_accepts_defaults():
    assert Settings().token_secret.get_secret_value() == "campus-kg-dev"


def test_prod_refuses_default_and_weak_secrets(monkeypatch):
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    with pytest.raises(ValidationError, match="TOKEN_SECRET"):
        Settings()
    monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", STRONG)
    monkeypatch.setenv("CAMPUS_KG_GRAPH_BACKEND", "neo4j")
    monkeypatch.setenv("NEO4J_PASSWORD", "neo4j")
    with pytest.raises(ValidationError, match="Neo4j password"):
        Settings()
    monkeypatch.setenv("NEO4J_PASSWORD", secrets.token_urlsafe(16))
    assert Settings().mode == "prod"


@pytest.mark.parametrize("secret", [
    "a" * 32, "ab" * 16, "abcdefgh" * 4, "a" * 64,
    "change-me-change-me-change-me-change-me",
    "changeme" + "Q7vX2pLk9RzT4wYb8NcJ3hFd6GsA1eKu5mPo0iVtWq",  # a placeholder before random text (fixed: xdist workers collect alike)
    "replace-with-64-random-characters-from-a-password-generator-xxxxxx",
    "<your token secret, 64 random characters, here>",
])
def test_prod_refuses_placeholders_and_low_entropy_token_secrets(monkeypatch, secret):
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", secret)
    with pytest.raises(ValidationError, match="TOKEN_SECRET is refused in prod"):
        Settings()


def test_prod_refuses_every_value_of_env_example(monkeypatch):
    values = example_values()
    assert "replace-with-a-long-random-password" in values  # the file is read, not a copy of it
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    monkeypatch.setenv("CAMPUS_KG_GRAPH_BACKEND", "neo4j")
    for value in values:
        monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", value)
        monkeypatch.setenv("NEO4J_PASSWORD", STRONG)
        with pytest.raises(ValidationError, match="refused in prod"):
            Settings()
        monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", STRONG)
        monkeypatch.setenv("NEO4J_PASSWORD", value)
        with pytest.raises(ValidationError, match="refused in prod"):
            Settings()


def test_prod_accepts_generated_secrets(monkeypatch):
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    for _ in range(50):
        monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", secrets.token_urlsafe(32))
        assert Settings().mode == "prod"
    monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", secrets.token_hex(32))
    assert Settings().mode == "prod"


def test_tokens_that_never_expire_are_dev_only(monkeypatch):
    monkeypatch.setenv("CAMPUS_KG_TOKEN_TTL_DAYS", "0")
    assert Settings().token_ttl_days == 0
    monkeypatch.setenv("CAMPUS_KG_MODE", "prod")
    monkeypatch.setenv("CAMPUS_KG_TOKEN_SECRET", STRONG)
    with pytest.raises(ValidationError, match="never expire"):
        Settings()


def test_trusted_proxies_from_the_environment(monkeypatch):
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("CAMPUS_KG_TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16,::1")
    assert Settings().trusted_proxies == ["10.0.0.5", "10.1.0.0/16", "::1"]
    monkeypatch.setenv("CAMPUS_KG_TRUSTED_PROXIES", "*")
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings()
