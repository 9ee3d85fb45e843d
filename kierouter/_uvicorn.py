"""uvicorn set up the way kierouter's servers need it. Imported only when a server starts.

What uvicorn's h11 protocol (``uvicorn/protocols/http/h11_impl.py``) does not do, and
:class:`LimitedH11Protocol` adds:

* **a header timeout.** uvicorn arms its keep-alive timer only after a response, so a client
  that connects and sends a partial head (or nothing) holds its socket forever. The head must
  now arrive within ``header_timeout`` of the connection opening (or of the first byte of a
  later request on a keep-alive connection; uvicorn's keep-alive timer covers the idle gap).
* **a body timeout** (``body_timeout``) for apps that do not time their own reads; the webhook
  receiver does (so its limits hold in any ASGI server) and answers 408 first.
* **a hard connection cap.** uvicorn's ``limit_concurrency`` answers 503 to *requests* beyond
  the limit but keeps every accepted socket; here a connection beyond ``max_connections`` is
  closed as soon as it is accepted.
* **DropConnection.** An app raising it gets its TCP connection reset (SO_LINGER 0, then
  ``abort()``) with nothing written: the client sees a connection closed without a response,
  as when KIE's side drops one. uvicorn alone would log the exception and answer 500, so the
  protocol wraps the app (``self.app`` is what ``handle_events`` runs for each request) and
  waits for ``connection_lost`` before returning, which marks the request cycle disconnected
  and keeps uvicorn from answering or logging anything for it.

:class:`RunningServer` starts uvicorn's :class:`uvicorn.Server` on a socket we bound (binding
errors stay ``OSError``; uvicorn's own binding calls ``sys.exit``), with no lifespan, no logging
configuration of its own (the application's logging stays as it was), the access log behind a
redacting filter, and a shutdown that waits only as long as requests are actually running
(``uvicorn.Server.shutdown`` sleeps at least 0.1 s and polls at 0.1 s; hundreds of emulators
start and stop in the test suite).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import _logfilter
from ._server import ASGIApp, DropConnection, ServerLimits

__all__ = ["LimitedH11Protocol", "RunningServer"]

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN
_DATE_TICK = 1.0


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits above. Strictly private.

    One subclass is made per server (:func:`protocol_for`) so each carries its own limits.
    """

    limits: ClassVar[ServerLimits] = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app = self.app
        self.app = self._run_app
        self._phase: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost = asyncio.Event()
        self._stopping = False

    # -- connection life -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = self.limits.max_connections
        if cap is not None and len(self.connections) > cap:
            transport.abort()
            return
        self._enter("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter(None)
        super().connection_lost(exc)
        self._lost.set()

    def data_received(self, data: bytes) -> None:
        if self._phase == "idle":
            self._enter("head")  # the first byte of the next request: its head is timed now
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase not in ("head", "idle"):
                self._enter("idle")  # between requests uvicorn's keep-alive timer rules
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._enter("body")
        elif self._phase is not None:
            self._enter(None)

    def _enter(self, phase: str | None) -> None:
        self._phase = phase
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        seconds = {"head": self.limits.header_timeout, "body": self.limits.body_timeout}.get(
            phase or ""
        )
        if seconds is not None and self.transport is not None:
            self._timer = self.loop.call_later(seconds, self._expire)

    def _expire(self) -> None:
        # Closing is the answer to a head or body that never came: the app (if one runs) sees
        # http.disconnect from its next receive().
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- the app, and how it may drop its connection -----------------------------------------

    async def _run_app(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self._app(scope, receive, send)
        except DropConnection:
            self.reset()
            await self._lost.wait()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # cancelled by our own shutdown after its grace: not an application error

    def reset(self) -> None:
        """Abort the connection with a TCP reset and write nothing more."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.transport.abort()

    def stop(self) -> None:
        """Shutdown after the grace period: close this connection whatever it is doing."""
        self._stopping = True
        self.transport.abort()


def protocol_for(limits: ServerLimits) -> type[LimitedH11Protocol]:
    """A protocol class carrying ``limits``."""
    return type("KierouterH11Protocol", (LimitedH11Protocol,), {"limits": limits})


class RunningServer:
    """One started uvicorn server. Strictly private: :class:`kierouter._server.Server` uses it."""

    def __init__(self, server: uvicorn.Server, limits: ServerLimits) -> None:
        self._server = server
        self._limits = limits
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, app: ASGIApp, sock: socket.socket, limits: ServerLimits) -> RunningServer:
        """Serve ``app`` on the bound socket ``sock``."""
        _logfilter.install()
        config = uvicorn.Config(
            app,
            http=protocol_for(limits),
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,  # the application's logging is its own
            access_log=True,  # shown only where the application has handlers, redacted
            proxy_headers=False,  # the peer is who connected; no header can claim otherwise
            server_header=False,
            timeout_keep_alive=limits.keep_alive,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        running = cls(server, limits)
        await server.on_tick(0)  # the Date header, before the first request
        await server.startup(sockets=[sock])
        running._ticker = asyncio.ensure_future(running._tick())
        return running

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_DATE_TICK)
            await self._server.on_tick(0)

    async def close(self) -> None:
        """Stop accepting; give running requests ``shutdown_grace`` seconds; close the rest."""
        server, state = self._server, self._server.server_state
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for listener in server.servers:
            listener.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle: closed now; busy: closed after its response
        tasks = set(state.tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=self._limits.shutdown_grace)
        for connection in list(state.connections):
            if isinstance(connection, LimitedH11Protocol):
                connection.stop()
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.gather(*state.tasks, return_exceptions=True)
        for listener in server.servers:
            await listener.wait_closed()
