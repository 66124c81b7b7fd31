"""The server under `keras-vae serve`: uvicorn with bounds that slow or idle clients cannot outlast. Each
connection must send a request's headers within HEADER_SECONDS (of connecting, or of its last response), at
most MAX_CONNECTIONS are open at once (one more is closed unanswered), and keep-alive waits
KEEP_ALIVE_SECONDS; a body's own deadline is the app's (app.BODY_SECONDS)."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
MAX_CONNECTIONS = 64
KEEP_ALIVE_SECONDS = 5


def bounded_protocol(
    header_seconds: float = HEADER_SECONDS, max_connections: int = MAX_CONNECTIONS
) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol that closes a connection whose request headers do not arrive in
    header_seconds, and any connection beyond max_connections open at once."""

    class BoundedH11Protocol(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()
                return
            self.arm_deadline()

        def arm_deadline(self) -> None:
            self.disarm_deadline()
            self.deadline = self.loop.call_later(header_seconds, self.headers_too_slow)

        def disarm_deadline(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def headers_too_slow(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self.disarm_deadline()  # the headers are in: the request runs, under the app's own deadlines

        def on_response_complete(self) -> None:
            self.arm_deadline()  # before the next pipelined request, which handle_events may start at once
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm_deadline()
            super().connection_lost(exc)

    return BoundedH11Protocol


def server_config(
    app, header_seconds: float = HEADER_SECONDS, max_connections: int = MAX_CONNECTIONS
) -> uvicorn.Config:
    """uvicorn's Config for the app, quiet but for warnings, with the bounds of bounded_protocol."""
    return uvicorn.Config(
        app,
        http=bounded_protocol(header_seconds, max_connections),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_level="warning",
    )
