"""Human-authored state: API tokens, the access log, steward decisions, correction requests and the
audit trail of every steward action.

Any SQLAlchemy URL works; SQLite in the workspace is the default. The access log is append-only:
no code path updates or deletes it, and on SQLite triggers refuse both. So are the decisions, the
correction events and the audit trail: a changed mind is a newer row.

Deciding is atomic without locks: each event of a correction request, and each decision on a review
item, carries its step number (how many came before it), unique per request or item. Two stewards
who read the same state write the same step; the database keeps the first and the second gets
`DecisionConflict` (HTTP 409).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, String, Table, Text, create_engine, event,
                        insert, inspect, select, text, update)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from campus_kg.group_commit import GroupCommitter

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
    # NULL: made before tokens expired (read as created_at + token_ttl_days); NEVER: never expires.
    Column("expires_at", DateTime),
)
NEVER = dt.datetime(9999, 12, 31)

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
    Column("item_step", Integer),  # decisions on that review item before this one (see the module doc)
)
Index("uq_steward_decision_item_step", steward_decision.c.review_item, steward_decision.c.item_step, unique=True)
DECIDING = ("same", "not_same")  # judgements that close a review item ("unsure" leaves it open)

CORRECTION_STATUSES = ("open", "approved", "refused")

# A person's request to correct a value (PIPL art. 46), and each step a steward takes on it: one row
# per event, never updated; the newest row of a request is its status.
correction_event = Table(
    "correction_event", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("request_id", String(16), nullable=False, index=True),
    Column("person_id", String(32), nullable=False, index=True),
    Column("property", String(80), nullable=False),
    Column("current_value", Text),
    Column("proposed_value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", Text),
    Column("status", String(10), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("note", Text),  # the steward's reason when approving or refusing
    Column("step", Integer),  # events of the request before this one (see the module doc)
)
Index("uq_correction_event_step", correction_event.c.request_id, correction_event.c.step, unique=True)

# Every action a steward, auditor or admin takes through the API: who, what, on what, why.
audit_trail = Table(
    "audit_trail", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(300)),
    Column("detail", Text),  # JSON
)

APPEND_ONLY = ("access_log", "steward_decision", "correction_event", "audit_trail")
_APPEND_ONLY_SQLITE = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in APPEND_ONLY for verb in ("UPDATE", "DELETE"))


# Columns added since the first release: StateStore adds them to an older database it opens.
ADDED_COLUMNS = (api_token.c.expires_at, steward_decision.c.item_step, correction_event.c.step)
ADDED_INDEXES = ("uq_steward_decision_item_step", "uq_correction_event_step")


class TokenRefused(Exception):
    """The bearer token does not authenticate; the message says why (unknown, revoked, expired)."""


class DecisionConflict(ValueError):
    """Someone else decided first (or at the same moment): the caller's view is out of date."""


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    person_id: str | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class StateStore:
    def __init__(self, url: str, token_secret: str, token_ttl_days: int = 90):
        """`token_ttl_days`: lifetime of new tokens by default, and of tokens made before tokens
        expired (counted from their creation); 0 = never."""
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
        metadata.create_all(self.engine)
        self._migrate()
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as conn:
                for ddl in _APPEND_ONLY_SQLITE:
                    conn.execute(text(ddl))
        self._secret = token_secret.encode("utf-8")
        self.token_ttl_days = token_ttl_days
        self._access_writer = GroupCommitter(self._write_access)

    def _migrate(self) -> None:
        """Bring a state database made by an older campus-kg up to date (new nullable columns and
        their unique indexes); old rows keep NULL there, which every reader understands."""
        present = {t: {c["name"] for c in inspect(self.engine).get_columns(t)}
                   for t in {c.table.name for c in ADDED_COLUMNS}}
        with self.engine.begin() as conn:
            for column in ADDED_COLUMNS:
                if column.name not in present[column.table.name]:
                    kind = column.type.compile(self.engine.dialect)
                    conn.execute(text(f"ALTER TABLE {column.table.name} ADD COLUMN {column.name} {kind}"))
            for index in (i for t in metadata.tables.values() for i in t.indexes if i.name in ADDED_INDEXES):
                index.create(conn, checkfirst=True)

    def _hash(self, token: str) -> str:
        return hmac.new(self._secret, token.encode("utf-8"), hashlib.sha256).hexdigest()

    # ---- tokens --------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, person_id: str | None = None,
                 expires_days: int | None = None) -> tuple[str, str]:
        """Returns (token_id, token). Only the token's keyed hash is stored. The token expires after
        `expires_days` (default: token_ttl_days; 0 = never)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "self" and not person_id:
            raise ValueError("a `self` token must be bound to a master person (--person)")
        days = self.token_ttl_days if expires_days is None else expires_days
        if not 0 <= days <= 36_500:
            raise ValueError("a token expires after 0 (never) to 36500 days")
        token_id = secrets.token_hex(4)
        token = f"ckg_{token_id}_{secrets.token_urlsafe(32)}"
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(insert(api_token).values(token_id=token_id, name=name, role=role, person_id=person_id,
                                                  token_hash=self._hash(token), created_at=now,
                                                  expires_at=NEVER if days == 0 else now + dt.timedelta(days=days)))
        return token_id, token

    def _expires_at(self, row) -> dt.datetime | None:
        """When the token stops working (None: never)."""
        expires = row["expires_at"]
        if expires is None:  # made before tokens expired: the setting decides
            return row["created_at"] + dt.timedelta(days=self.token_ttl_days) if self.token_ttl_days else None
        return None if expires >= NEVER else expires

    def list_users(self) -> list[dict]:
        """Every token (never its hash), `expires_at` as it applies now (None: never)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_token).order_by(api_token.c.created_at)).mappings().all()
        return [{**{k: v for k, v in r.items() if k != "token_hash"}, "expires_at": self._expires_at(r)}
                for r in rows]

    def revoke(self, token_id: str) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(update(api_token).where(api_token.c.token_id == token_id,
                                                       api_token.c.revoked_at.is_(None)).values(revoked_at=_now()))
        return res.rowcount > 0

    def verify(self, token: str) -> Principal:
        """The token's principal; TokenRefused (saying why) for an unknown, revoked or expired token."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_token).where(api_token.c.token_hash == self._hash(token))).mappings().first()
        return self._working_principal(row)

    def principal_by_token_id(self, token_id: str) -> Principal | None:
        """The principal of the token with this ID while it works, else None (unknown, revoked, expired).
        A web session names its token by ID and looks it up on every request (graph_api.ui.sessions),
        so revoking or expiring the token ends its sessions by the same rule as `verify`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_token).where(api_token.c.token_id == token_id)).mappings().first()
        try:
            return self._working_principal(row)
        except TokenRefused:
            return None

    def _working_principal(self, row) -> Principal:
        """The one rule for when a token works: TokenRefused (saying why) unless known, unrevoked, unexpired."""
        if row is None or row["revoked_at"] is not None:
            raise TokenRefused("unknown or revoked token")
        expires = self._expires_at(row)
        if expires is not None and _now() >= expires:
            raise TokenRefused("token expired")
        return Principal(row["token_id"], row["name"], row["role"], row["person_id"])

    def authenticate(self, token: str) -> Principal | None:
        try:
            return self.verify(token)
        except TokenRefused:
            return None

    # ---- access log ----------------------------------------------------------------------------
    def log_access(self, principal: Principal, person_id: str | None, endpoint: str, fields: list[str],
                   client: str | None) -> None:
        """Returns once the entry is committed (group commit: see campus_kg.group_commit)."""
        self._access_writer.submit(dict(
            at=_now(), actor=principal.name, token_id=principal.token_id, role=principal.role,
            person_id=person_id, endpoint=endpoint, fields=json.dumps(fields, ensure_ascii=False), client=client))

    def _write_access(self, rows: list[dict]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(access_log), rows)

    # ---- steward decisions ---------------------------------------------------------------------
    def add_decision(self, entity_type: str, record_1: str, record_2: str, judgement: str, steward: str,
                     reason: str | None = None, review_item: str | None = None) -> int:
        if judgement not in JUDGEMENTS:
            raise ValueError(f"judgement must be one of {', '.join(JUDGEMENTS)}")
        if record_1 == record_2:
            raise ValueError("a decision needs two different records")
        a, b = sorted((record_1, record_2))
        item_step = None
        if review_item is not None:  # one snapshot: the item's decisions so far
            with self.engine.connect() as conn:
                before = conn.execute(select(steward_decision.c.judgement, steward_decision.c.steward).where(
                    steward_decision.c.review_item == review_item).order_by(steward_decision.c.id)).all()
            if closing := [d for d in before if d.judgement in DECIDING]:
                raise DecisionConflict(f"review item {review_item} is already decided "
                                       f"({closing[-1].judgement}, by {closing[-1].steward})")
            item_step = len(before)
        try:
            with self.engine.begin() as conn:
                res = conn.execute(insert(steward_decision).values(
                    at=_now(), entity_type=entity_type, record_a=a, record_b=b, judgement=judgement,
                    steward=steward, reason=reason, review_item=review_item, item_step=item_step))
        except IntegrityError:
            raise DecisionConflict(f"review item {review_item} was decided by someone else meanwhile") from None
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

    def decisions_log(self, record_ids: set[str] | None = None) -> list[dict]:
        """Every judgement ever recorded (oldest first), optionally only those touching these records."""
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(steward_decision).order_by(steward_decision.c.id)).mappings()]
        if record_ids is not None:
            rows = [r for r in rows if r["record_a"] in record_ids or r["record_b"] in record_ids]
        return rows

    # ---- corrections ---------------------------------------------------------------------------
    def request_correction(self, person_id: str, prop: str, current_value: str | None, proposed_value: str,
                           reason: str, evidence: str | None, actor: str) -> str:
        request_id = secrets.token_hex(6)
        with self.engine.begin() as conn:
            conn.execute(insert(correction_event).values(
                at=_now(), request_id=request_id, person_id=person_id, property=prop, current_value=current_value,
                proposed_value=proposed_value, reason=reason, evidence=evidence, status="open", actor=actor, step=0))
        return request_id

    def decide_correction(self, request_id: str, status: str, actor: str, note: str) -> dict:
        """Exactly one decision per request wins: the others get DecisionConflict, also when they
        arrive at the same moment (the unique step, see the module doc)."""
        if status not in ("approved", "refused"):
            raise ValueError("a correction is approved or refused")
        with self.engine.connect() as conn:  # one snapshot: the status and the step come from the same rows
            events = conn.execute(select(correction_event).where(correction_event.c.request_id == request_id)
                                  .order_by(correction_event.c.id)).mappings().all()
        if not events:
            raise KeyError(request_id)
        current = events[-1]
        if current["status"] != "open":
            raise DecisionConflict(f"request {request_id} is already {current['status']}")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(correction_event).values(
                    **{k: current[k] for k in ("request_id", "person_id", "property", "current_value",
                                               "proposed_value", "reason", "evidence")},
                    at=_now(), status=status, actor=actor, note=note, step=len(events)))
        except IntegrityError:
            raise DecisionConflict(f"request {request_id} was decided by someone else meanwhile") from None
        return self.correction(request_id)  # type: ignore[return-value]

    def corrections(self, person_id: str | None = None, status: str | None = None) -> list[dict]:
        """Each request as it stands now (its newest event), with when it was made."""
        q = select(correction_event).order_by(correction_event.c.id)
        if person_id:
            q = q.where(correction_event.c.person_id == person_id)
        latest: dict[str, dict] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q).mappings():
                entry = dict(row)
                entry["requested_at"] = latest.get(row["request_id"], entry).get("requested_at", row["at"])
                latest[row["request_id"]] = entry
        return [r for r in latest.values() if status is None or r["status"] == status]

    def correction(self, request_id: str) -> dict | None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(correction_event.c.person_id).where(
                correction_event.c.request_id == request_id).limit(1)).all()
        if not rows:
            return None
        return next(r for r in self.corrections(rows[0][0]) if r["request_id"] == request_id)

    # ---- audit trail ---------------------------------------------------------------------------
    def audit(self, principal: Principal, action: str, target: str | None, detail: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(audit_trail).values(at=_now(), actor=principal.name, role=principal.role,
                                                    action=action, target=target,
                                                    detail=json.dumps(detail or {}, ensure_ascii=False,
                                                                      default=str)))

    def audit_entries(self, actor: str | None = None, since: dt.datetime | None = None) -> list[dict]:
        q = select(audit_trail).order_by(audit_trail.c.id)
        if actor:
            q = q.where(audit_trail.c.actor == actor)
        if since:
            q = q.where(audit_trail.c.at >= since)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]

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
