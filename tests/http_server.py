"""A real uvicorn server on a free loopback port, in a thread, for HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import uvicorn

from graph_api.proxies import uvicorn_proxy_options


@contextmanager
def serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # As `campus-kg serve` does: uvicorn's default would believe X-Forwarded-For from 127.0.0.1.
    settings = getattr(getattr(app, "state", None), "settings", None)
    proxies = uvicorn_proxy_options(settings) if settings is not None else {"proxy_headers": False}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **proxies))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
