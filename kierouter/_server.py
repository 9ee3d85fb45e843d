"""Every HTTP server kierouter runs (emulator, webhook receiver, ``generate --listen``): uvicorn.

uvicorn (its h11 protocol) is started in-process on the running event loop and imported only
when a server starts, so ``import kierouter`` stays light. What kierouter adds around it lives
in :mod:`kierouter._uvicorn`: limits uvicorn does not have (a header timeout, a body timeout, a
hard connection cap), an app raising :class:`DropConnection` getting its connection reset with
no answer (the emulator's fault), a redacting filter on uvicorn's access log, and a start and
stop fast enough for a test suite that starts hundreds of emulators.

Usage::

    async with serve(app, host="127.0.0.1", port=0) as server:
        print(server.url)          # "http://127.0.0.1:54321"

    # blocking, for command-line tools; stops cleanly on SIGINT/SIGTERM
    serve_forever(app, "127.0.0.1", 8799)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EMULATOR_LIMITS",
    "RECEIVER_LIMITS",
    "ASGIApp",
    "DropConnection",
    "Server",
    "ServerLimits",
    "serve",
    "serve_forever",
]

#: An ASGI 3 application: ``async def app(scope, receive, send)``. Typed loosely so that apps
#: annotated with ``dict``/``Mapping`` scopes and messages are accepted as they are.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class DropConnection(Exception):
    """Raise from an app to reset the client's connection without sending any answer."""


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """What one server lets a client hold. Strictly private; see the module docstring.

    Attributes:
        header_timeout: seconds a request's head (request line and headers) may take to arrive,
            from the connection's opening or the first byte of a keep-alive request.
        keep_alive: seconds an idle keep-alive connection is kept open: longer than httpx's
            5 s pool expiry, so a client reusing a connection never races the server closing it.
        body_timeout: seconds a request's body may take to arrive after its head (``None``: the
            app decides; the webhook receiver has its own, shorter timeout).
        max_connections: open connections at most; a connection beyond it is closed at once.
        shutdown_grace: seconds running requests get to finish when the server stops.
    """

    header_timeout: float = 10.0
    keep_alive: int = 15
    body_timeout: float | None = 60.0
    max_connections: int | None = 1000
    shutdown_grace: float = 1.0


RECEIVER_LIMITS = ServerLimits(body_timeout=None)
"""Limits of a server running the webhook receiver (it times out bodies itself, 408 first)."""

EMULATOR_LIMITS = ServerLimits(
    header_timeout=30.0, keep_alive=75, body_timeout=60.0, max_connections=None
)
"""Limits of the emulator: a loopback test server that benchmarks load with many connections."""


class Server:
    """A server running one ASGI app. Use :func:`serve`, or ``start()`` and ``close()``."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ServerLimits | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or ServerLimits()
        self._running: Any = None

    def __repr__(self) -> str:
        state = "running" if self._running is not None else "stopped"
        return f"<Server {self.url} {state}>"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8799`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind the port (``OSError`` when it cannot) and start serving."""
        if self._running is not None:
            return
        from ._uvicorn import RunningServer

        sock = _bind(self.host, self.port)
        try:
            self._running = await RunningServer.start(self.app, sock, self.limits)
        except BaseException:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, let running requests finish (``shutdown_grace``), close the rest."""
        running, self._running = self._running, None
        if running is not None:
            await running.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``; errors are plain ``OSError`` (uvicorn's own
    binding calls ``sys.exit`` on failure, which must not happen inside a library)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ServerLimits | None = None,
) -> AsyncIterator[Server]:
    """Run ``app`` on ``host:port`` (0 = a free port) for the duration of the ``async with``."""
    server = Server(app, host, port, limits=limits)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def serve_forever(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ServerLimits | None = None,
    on_ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; ``on_ready`` is called once the port is bound.

    Either signal stops the server the same way: no new connections, running requests get
    ``shutdown_grace`` seconds, then the function returns (no ``KeyboardInterrupt`` traceback).
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with serve(app, host, port, limits=limits) as server:
            if on_ready is not None:
                on_ready(server)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
