"""Human-authored state: API tokens, the access log and steward decisions (corrections join them).

Any SQLAlchemy URL works; SQLite in the workspace is the default. The access log is append-only:
no code path updates or deletes it, and on SQLite triggers refuse both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import (Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, event, insert,
                        select, text, update)
from sqlalchemy.engine import Engine

ROLES = ("self", "steward", "analyst", "auditor", "admin")

metadata = MetaData()

api_token = Table(
    "api_token", metadata,
    Column("token_id", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("person_id", String(32)),  # the master person a `self` token is bound to
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

access_log = Table(
    "access_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("token_id", String(16)),
    Column("role", String(20), nullable=False),
    Column("person_id", String(32), index=True),
    Column("endpoint", String(200), nullable=False),
    Column("fields", Text),  # JSON list of the fields returned
    Column("client", String(100)),
)

JUDGEMENTS = ("same", "not_same", "unsure")

# A steward's judgement on two source records (nomenklatura's positive / negative / unsure). Never
# updated or deleted: a changed mind is a newer row, and the newest judgement on a pair counts.
steward_decision = Table(
    "steward_decision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("entity_type", String(40), nullable=False),
    Column("record_a", String(300), nullable=False, index=True),  # the smaller record ID of the pair
    Column("record_b", String(300), nullable=False, index=True),
    Column("judgement", String(10), nullable=False),
    Column("steward", String(200), nullable=False),
    Column("reason", Text),
    Column("review_item", String(32)),  # the review item it answered, if any
)

_APPEND_ONLY_SQLITE = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in ("access_log", "steward_decision") for verb in ("UPDATE", "DELETE"))


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    person_id: str | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class StateStore:
    def __init__(self, url: str, token_secret: str):
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
        metadata.create_all(self.engine)
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as conn:
                for ddl in _APPEND_ONLY_SQLITE:
                    conn.execute(text(ddl))
        self._secret = token_secret.encode("utf-8")

    def _hash(self, token: str) -> str:
        return hmac.new(self._secret, token.encode("utf-8"), hashlib.sha256).hexdigest()

    # ---- tokens --------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, person_id: str | None = None) -> tuple[str, str]:
        """Returns (token_id, token). Only the token's keyed hash is stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "self" and not person_id:
            raise ValueError("a `self` token must be bound to a master person (--person)")
        token_id = secrets.token_hex(4)
        token = f"ckg_{token_id}_{secrets.token_urlsafe(32)}"
        with self.engine.begin() as conn:
            conn.execute(insert(api_token).values(token_id=token_id, name=name, role=role, person_id=person_id,
                                                  token_hash=self._hash(token), created_at=_now()))
        return token_id, token

    def list_users(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_token).order_by(api_token.c.created_at)).mappings().all()
        return [{k: v for k, v in r.items() if k != "token_hash"} for r in rows]

    def revoke(self, token_id: str) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(update(api_token).where(api_token.c.token_id == token_id,
                                                       api_token.c.revoked_at.is_(None)).values(revoked_at=_now()))
        return res.rowcount > 0

    def authenticate(self, token: str) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_token).where(api_token.c.token_hash == self._hash(token))).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        return Principal(row["token_id"], row["name"], row["role"], row["person_id"])

    # ---- access log ----------------------------------------------------------------------------
    def log_access(self, principal: Principal, person_id: str | None, endpoint: str, fields: list[str],
                   client: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(access_log).values(
                at=_now(), actor=principal.name, token_id=principal.token_id, role=principal.role,
                person_id=person_id, endpoint=endpoint, fields=json.dumps(fields, ensure_ascii=False), client=client))

    # ---- steward decisions ---------------------------------------------------------------------
    def add_decision(self, entity_type: str, record_1: str, record_2: str, judgement: str, steward: str,
                     reason: str | None = None, review_item: str | None = None) -> int:
        if judgement not in JUDGEMENTS:
            raise ValueError(f"judgement must be one of {', '.join(JUDGEMENTS)}")
        if record_1 == record_2:
            raise ValueError("a decision needs two different records")
        a, b = sorted((record_1, record_2))
        with self.engine.begin() as conn:
            res = conn.execute(insert(steward_decision).values(
                at=_now(), entity_type=entity_type, record_a=a, record_b=b, judgement=judgement,
                steward=steward, reason=reason, review_item=review_item))
        return int(res.inserted_primary_key[0])

    def decisions(self, entity_type: str | None = None) -> list[dict]:
        """The newest judgement on each pair (all of them stay in the log)."""
        q = select(steward_decision).order_by(steward_decision.c.id)
        if entity_type:
            q = q.where(steward_decision.c.entity_type == entity_type)
        latest: dict[tuple[str, str, str], dict] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q).mappings():
                latest[(row["entity_type"], row["record_a"], row["record_b"])] = dict(row)
        return list(latest.values())

    def access_entries(self, person_id: str | None = None, actor: str | None = None,
                       since: dt.datetime | None = None) -> list[dict]:
        q = select(access_log).order_by(access_log.c.id)
        if person_id:
            q = q.where(access_log.c.person_id == person_id)
        if actor:
            q = q.where(access_log.c.actor == actor)
        if since:
            q = q.where(access_log.c.at >= since)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]
