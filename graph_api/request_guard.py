"""The first thing every HTTP request meets: the body size limit and the bearer token, checked before
a byte of the body is read.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which would put every request and
response through an extra task and memory stream). In this order:

1. a declared `Content-Length` above `max_request_bytes` → 413, the body unread;
2. a route that needs a token (all but the public ones) without a valid one → 401, the body unread;
   the principal found is handed to the routers (`graph_api.deps.get_principal`), so the token is
   looked up once per request, as before;
3. a body without a length (chunked) is counted as it streams in: past the limit → 413, and the
   application sees the client gone.

With `token_cache_seconds` > 0 a token verified in the last that many seconds is trusted again
without the state-store lookup (and its thread hop): a revoked or expired token then stops working
within that bound in every server process. Only accepted tokens are kept; 0 (the default) looks
every token up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

import anyio.to_thread

from campus_kg.state import Principal, TokenRefused

PRINCIPAL_SCOPE_KEY = "campus_kg.principal"
TOKEN_CACHE_MAX = 10_000  # tokens kept at most; past it the cache starts again empty
Verify = Callable[[str], Principal]


async def _send_json(send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, as HTTPBearer)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class RequestGuard:
    def __init__(self, app, *, max_request_bytes: int, public_paths: Iterable[str], verify: Verify,
                 token_cache_seconds: float = 0) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.public_paths = frozenset(public_paths)
        self.verify = verify
        self.token_cache_seconds = token_cache_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}  # token -> (principal, trusted until)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {}
        for name, value in scope["headers"]:  # the first of a repeated header counts, as in Starlette
            headers.setdefault(name, value)
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_request_bytes):
            await self._too_large(send)
            return
        if scope["path"] not in self.public_paths:
            refused = await self._authenticate(scope, headers.get(b"authorization"))
            if refused is not None:
                await _send_json(send, 401, refused, [(b"www-authenticate", b"Bearer")])
                return
        if b"transfer-encoding" not in headers:  # HTTP/1.1: no length, no chunks → no body
            await self.app(scope, receive, send)  # (with a length, the server delivers no more than it)
            return
        await self._counting(scope, receive, send)

    async def _authenticate(self, scope, authorization: bytes | None) -> str | None:
        """None when the caller is known (the principal is then in the scope), else why not."""
        token = bearer_token(authorization.decode("latin-1") if authorization else None)
        if token is None:
            return "a bearer token is required"
        cached = self._verified.get(token)
        now = time.monotonic()
        if cached is not None and now < cached[1]:
            scope[PRINCIPAL_SCOPE_KEY] = cached[0]
            return None
        try:
            # The state store is synchronous (SQLAlchemy): off the event loop, as the plain `def`
            # dependency that looked the token up before ran in FastAPI's thread pool.
            principal = await anyio.to_thread.run_sync(self.verify, token)
        except TokenRefused as refused:
            self._verified.pop(token, None)
            return str(refused)
        scope[PRINCIPAL_SCOPE_KEY] = principal
        if self.token_cache_seconds > 0:
            if len(self._verified) >= TOKEN_CACHE_MAX:
                self._verified.clear()
            # From before the lookup: the bound holds from the moment the state store was asked.
            self._verified[token] = (principal, now + self.token_cache_seconds)
        return None

    async def _too_large(self, send) -> None:
        await _send_json(send, 413, f"request body larger than {self.max_request_bytes} bytes "
                                    "(setting max_request_bytes)", [(b"connection", b"close")])

    async def _counting(self, scope, receive, send) -> None:
        """A chunked body: counted as it arrives; past the limit the client gets 413 and the
        application a disconnect (it stops reading; what it answers is dropped)."""
        received = 0
        answered = False
        started = False

        async def counting_receive():
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_request_bytes:
                    answered = True
                    if not started:
                        await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message) -> None:
            nonlocal started
            if not answered:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not answered:
                raise
            # The application failed only because its body was cut short; the client has its 413.
