"""A small asyncio HTTP/1.1 server for ASGI 3 apps: the emulator and the webhook receiver run on it.

Why not uvicorn: the core depends on five packages only, and both servers we run are loopback
test or tool servers with simple needs. This one speaks enough HTTP/1.1 for httpx, curl and KIE's
callback senders:

* keep-alive connections, requests with a ``Content-Length`` body (no chunked request bodies);
* one ASGI ``http`` scope per request (``type``, ``asgi``, ``http_version``, ``method``,
  ``scheme``, ``path``, ``raw_path``, ``query_string``, ``root_path``, ``headers``, ``client``,
  ``server``); the app's response is buffered and sent with a ``Content-Length``;
* a malformed request line or header block is answered ``400`` and the connection closed; an
  app that raises answers ``500``; an app that raises :class:`DropConnection` gets its
  connection closed with no answer at all (fault injection);
* the lifespan protocol is not used: start and stop work around the app.

Usage::

    async with serve(app, host="127.0.0.1", port=0) as server:
        print(server.url)          # "http://127.0.0.1:54321"

    # blocking, for command-line tools; stops on SIGINT/SIGTERM
    serve_forever(app, "127.0.0.1", 8799)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

__all__ = ["ASGIApp", "DropConnection", "Server", "serve", "serve_forever"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application: ``async def app(scope, receive, send)``. Typed loosely so that apps
#: annotated with ``dict``/``Mapping`` scopes and messages are accepted as they are.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_IDLE_TIMEOUT = 75.0


class DropConnection(Exception):
    """Raise from an app to close the client's connection without sending any answer."""


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Server:
    """A running server: its address and how to stop it. Strictly created by :func:`serve`."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8799`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, limit=_MAX_HEAD, backlog=2048
        )
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, close every open connection and wait for handlers to finish."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = _address(writer.get_extra_info("peername"))
        local = _address(writer.get_extra_info("sockname"))
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not self._closing:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError):
                return
            except asyncio.LimitOverrunError:
                await _write_simple(writer, 431, "request header block too large")
                return
            try:
                method, target, version, headers = _parse_head(head)
                body = await _read_body(reader, writer, headers)
            except _BadRequest as exc:
                await _write_simple(writer, exc.status, str(exc))
                return
            keep_alive = _keep_alive(version, headers)
            path, _, query = target.partition("?")
            scope: Scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": version[5:],
                "method": method,
                "scheme": "http",
                "path": _unquote(path),
                "raw_path": path.encode("latin-1"),
                "query_string": query.encode("latin-1"),
                "root_path": "",
                "headers": headers,
                "client": peer,
                "server": local,
            }
            try:
                status, out_headers, out_body = await _run_app(self.app, scope, body)
            except DropConnection:
                if sock is not None:
                    # an abortive close (RST) looks like a dropped connection to the client
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                writer.transport.abort()
                return
            except Exception:
                status, out_headers, out_body = (
                    500,
                    [(b"content-type", b"text/plain; charset=utf-8")],
                    b"internal server error",
                )
            writer.write(_response_head(status, out_headers, len(out_body), keep_alive) + out_body)
            await writer.drain()
            if not keep_alive:
                return


async def _run_app(app: ASGIApp, scope: Scope, body: bytes) -> tuple[int, list[Any], bytes]:
    sent_body = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        # the app asked again: the request is over; park until the connection goes away
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}  # pragma: no cover

    status = 500
    headers: list[Any] = []
    chunks: list[bytes] = []
    started = False

    async def send(message: Message) -> None:
        nonlocal status, headers, started
        if message["type"] == "http.response.start":
            started = True
            status = int(message["status"])
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    if not started:
        raise RuntimeError("ASGI app returned without starting a response")
    return status, headers, b"".join(chunks)


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    try:
        request_line = lines[0].decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest(400, "request line is not ASCII") from None
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505 if version.startswith("HTTP/") else 400, "unsupported HTTP version")
    if not target.startswith("/"):
        if target.startswith(("http://", "https://")):
            # absolute-form target: keep the path part only
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        else:
            raise _BadRequest(400, "request target must be a path")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise _BadRequest(400, "malformed header line")
        headers.append((name.lower(), value.strip()))
    return method.upper(), target, version, headers


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: list[tuple[bytes, bytes]]
) -> bytes:
    length = b""
    for name, value in headers:
        if name == b"transfer-encoding" and value.lower() != b"identity":
            raise _BadRequest(501, "chunked request bodies are not supported; send Content-Length")
        if name == b"content-length":
            length = value
        if name == b"expect" and value.lower() == b"100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not length:
        return b""
    try:
        size = int(length)
    except ValueError:
        raise _BadRequest(400, "bad Content-Length") from None
    if size < 0:
        raise _BadRequest(400, "bad Content-Length")
    if size > _MAX_BODY:
        raise _BadRequest(413, "request body too large")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise _BadRequest(400, "request body shorter than Content-Length") from None


def _keep_alive(version: str, headers: list[tuple[bytes, bytes]]) -> bool:
    connection = b""
    for name, value in headers:
        if name == b"connection":
            connection = value.lower()
    if version == "HTTP/1.0":
        return connection == b"keep-alive"
    return connection != b"close"


def _response_head(status: int, headers: list[Any], length: int, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
    for name, value in headers:
        raw_name = name if isinstance(name, bytes) else str(name).encode("latin-1")
        if raw_name.lower() in (b"content-length", b"connection", b"transfer-encoding"):
            continue
        raw_value = value if isinstance(value, bytes) else str(value).encode("latin-1")
        lines.append(raw_name + b": " + raw_value)
    lines.append(b"content-length: " + str(length).encode())
    lines.append(b"connection: keep-alive" if keep_alive else b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _write_simple(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = text.encode()
    head = _response_head(
        status, [(b"content-type", b"text/plain; charset=utf-8")], len(body), False
    )
    with contextlib.suppress(Exception):
        writer.write(head + body)
        await writer.drain()


def _unquote(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Server]:
    """Run ``app`` on ``host:port`` (0 = a free port) for the duration of the ``async with``."""
    server = Server(app, host, port)
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
    on_ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; ``on_ready`` is called once the port is bound."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with serve(app, host, port) as server:
            if on_ready is not None:
                on_ready(server)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
