"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection.

With `--workers`, uvicorn binds the listening socket itself as `socket.socket(family)`, whose
protocol number is 0, so asyncio does not set TCP_NODELAY on accepted connections; Nagle's
algorithm then meets the client's delayed ACK and every keep-alive response waits ~40 ms.
"""

from __future__ import annotations

import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


HTTP_PROTOCOL = f"{__name__}:NoDelayH11Protocol"
