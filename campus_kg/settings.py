"""One validated settings object for every command and the API (environment prefix CAMPUS_KG_).

Every field is documented in docs/settings.md; tests/test_docs.py fails when one is not.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from campus_kg.secret_strength import weak_secret_reason

# Secrets that must never reach production (shipped defaults and the usual guesses).
KNOWN_WEAK_SECRETS = {"", "neo4j", "password", "changeme", "change-me", "secret", "admin", "campus-kg-dev"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAMPUS_KG_", env_file=".env", extra="ignore")

    mode: Literal["dev", "prod"] = "dev"
    workspace: Path = Path("workspace")
    graph_backend: Literal["ladybug", "neo4j"] = "ladybug"
    neo4j_uri: str | None = Field(default=None, validation_alias=AliasChoices("CAMPUS_KG_NEO4J_URI", "NEO4J_URI"))
    neo4j_user: str = Field(default="neo4j", validation_alias=AliasChoices("CAMPUS_KG_NEO4J_USER", "NEO4J_USER"))
    neo4j_password: SecretStr = Field(
        default=SecretStr("neo4j"), validation_alias=AliasChoices("CAMPUS_KG_NEO4J_PASSWORD", "NEO4J_PASSWORD")
    )
    neo4j_database: str = "neo4j"
    # Neo4j Community has one user database per server: a rebuild loads the standby (a second server,
    # or on Enterprise another database of the same one) and then switches the served graph to it.
    neo4j_standby_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("CAMPUS_KG_NEO4J_STANDBY_URI", "NEO4J_STANDBY_URI"))
    neo4j_standby_database: str | None = None
    neo4j_batch_size: int = Field(default=5_000, ge=1_000, le=50_000)
    neo4j_write_threads: int = Field(default=2, ge=1, le=16)
    # The `imports` directory of a local tools/neo4j-server: full builds replace the standby's store by an
    # offline import there instead of UNWIND (graph_api.store.neo4j_import). Unset: UNWIND (docker-compose).
    neo4j_import_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("CAMPUS_KG_NEO4J_IMPORT_DIR", "NEO4J_IMPORT_DIR"))
    state_url: str | None = None
    token_secret: SecretStr = SecretStr("campus-kg-dev")
    token_ttl_days: int = Field(default=90, ge=0, le=3650)
    # Seconds a server process trusts a token it verified without looking it up again (0: every request).
    token_cache_seconds: float = Field(default=0, ge=0, le=60)
    max_request_bytes: int = Field(default=1_048_576, ge=1_024, le=1_073_741_824)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    query_timeout_ms: int = Field(default=10_000, ge=100)
    duckdb_memory_limit: str = Field(default="512MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    duckdb_build_memory_limit: str = Field(default="4GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    ingest_max_delete_share: float = Field(default=0.2, ge=0, le=1)
    ladybug_buffer_pool_mb: int = Field(default=2048, ge=0)
    graph_patch_max_share: float = Field(default=0.05, ge=0, le=1)
    graph_connections: int = Field(default=8, ge=1, le=64)
    workspace_lock_timeout_s: float = Field(default=0, ge=0)
    graph_query_threads: int = Field(default=1, ge=0, le=256)
    person_cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    cypher_max_rows: int = Field(default=1_000, ge=1, le=100_000)
    cypher_workers: int = Field(default=2, ge=1, le=64)
    cypher_worker_memory_mb: int = Field(default=1536, ge=256)
    cypher_max_answer_bytes: int = Field(default=8 * 2**20, ge=1024)
    cypher_per_user_concurrency: int = Field(default=2, ge=1)
    match_threshold: float = Field(default=0.99, gt=0, lt=1)
    review_threshold: float = Field(default=0.5, gt=0, lt=1)
    mention_match_threshold: float = Field(default=0.95, gt=0, lt=1)
    review_budget: float = Field(default=0.01, ge=0, le=1)
    # Where the Person model runs (resolution/engines.py): DuckDB on this machine, or Spark past it.
    resolution_engine: Literal["duckdb", "spark"] = "duckdb"
    # A resolve reuses the Person model it saved while at most this share of the Person records
    # changed since it was trained (resolution/model_reuse.py).
    resolution_retrain_share: float = Field(default=0.05, ge=0, le=1)
    spark_master: str = Field(default="local[2]", min_length=1)
    # The Person model's own DuckDB (training and pair scoring; the whole engine on `duckdb`, the
    # hand-back on `spark`), separate from the lakehouse's `duckdb_memory_limit`.
    resolution_memory_limit: str = Field(default="1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    quality_green: float = Field(default=0.98, ge=0, le=1)
    quality_yellow: float = Field(default=0.90, ge=0, le=1)
    quality_timeliness_days: int = Field(default=400, ge=1)

    @model_validator(mode="after")
    def ordered_thresholds(self) -> Settings:
        if self.quality_yellow > self.quality_green:
            raise ValueError("CAMPUS_KG_QUALITY_YELLOW must not be above CAMPUS_KG_QUALITY_GREEN")
        return self

    @model_validator(mode="after")
    def ordered_match_thresholds(self) -> Settings:
        if self.review_threshold > self.match_threshold:
            raise ValueError("CAMPUS_KG_REVIEW_THRESHOLD must not be above CAMPUS_KG_MATCH_THRESHOLD")
        return self

    def quality_thresholds(self):
        from ingest.quality import Thresholds

        return Thresholds(self.quality_green, self.quality_yellow, self.quality_timeliness_days)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def split_proxies(cls, value):
        """`10.0.0.5,10.0.1.0/24` from the environment; a list from code."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"CAMPUS_KG_TRUSTED_PROXIES: {proxy!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def refuse_default_secrets(self) -> Settings:
        if self.mode != "prod":
            return self
        token = self.token_secret.get_secret_value()
        reason = "a known default" if token in KNOWN_WEAK_SECRETS else weak_secret_reason(token, min_length=32)
        if reason:
            raise ValueError(f"CAMPUS_KG_TOKEN_SECRET is refused in prod: {reason}; use e.g. "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        if self.graph_backend == "neo4j":
            pw = self.neo4j_password.get_secret_value()
            reason = "a known default" if pw in KNOWN_WEAK_SECRETS else weak_secret_reason(pw, min_length=12)
            if reason:
                raise ValueError(f"the Neo4j password is refused in prod: {reason}")
        if self.token_ttl_days == 0:
            raise ValueError("CAMPUS_KG_TOKEN_TTL_DAYS=0 (tokens that never expire) is refused in prod")
        return self

    def state_database_url(self) -> str:
        """Human-authored state (decisions, corrections, tokens, access log): SQLite in the workspace by default."""
        return self.state_url or f"sqlite:///{(self.workspace / 'state.sqlite').resolve()}"
