"""Whose word on the client's address the server takes (X-Forwarded-For, X-Forwarded-Proto).

uvicorn believes those headers from 127.0.0.1 and ::1 unless told otherwise, so any local caller
could write someone else's address into the access log. The server takes them only from the
proxies in `trusted_proxies` (empty by default: the socket's peer is the client). Every place that
starts a server (`campus-kg serve`, the tests' server) passes these options."""

from __future__ import annotations

from campus_kg.settings import Settings


def uvicorn_proxy_options(settings: Settings) -> dict:
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}
