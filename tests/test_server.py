"""kierouter._server: uvicorn as every server kierouter runs, with the limits it adds."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kierouter._server import DropConnection, ServerLimits, serve


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answer with the scope's request fields and the body; some paths misbehave on purpose."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/drop":
        raise DropConnection
    if scope["path"] == "/boom":
        raise RuntimeError("app bug")
    if scope["path"] == "/slow":
        await asyncio.sleep(0.05)
    if scope["path"] == "/forever":
        await asyncio.Event().wait()
    answer = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(),
        "body": body.decode(),
        "host": dict(scope["headers"]).get(b"host", b"").decode(),
        "client": scope["client"][0],
    }
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


async def raw(port: int, data: bytes, within: float = 5.0) -> bytes:
    """Send raw bytes on a new connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()


async def test_scope_carries_path_query_and_body() -> None:
    """An ASGI app sees method, decoded path, raw path, query string, headers and the body."""
    async with serve(echo) as server, httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post("/a%20b/c?x=1&y=%2F", content=b"hello")
    assert answer.json() == {
        "method": "POST",
        "path": "/a b/c",
        "raw_path": "/a%20b/c",
        "query": "x=1&y=%2F",
        "body": "hello",
        "host": f"127.0.0.1:{server.port}",
        "client": "127.0.0.1",
    }


async def test_chunked_request_bodies_reach_the_app() -> None:
    """A chunked (streamed, no Content-Length) request body arrives whole."""

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            yield part

    async with serve(echo) as server, httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post("/up", content=parts())
    assert answer.json()["body"] == "one two three"


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    """Two pipelined requests on one socket get two answers; Connection: close ends it."""
    async with serve(echo) as server:
        request = (
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await raw(server.port, request)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b'"path": "/one"' in data and b'"path": "/two"' in data


async def test_bad_requests_get_400_and_the_server_lives_on() -> None:
    """Garbage, a bad header, a bad length and a head over the size limit answer 400."""
    async with serve(echo) as server:
        garbage = await raw(server.port, b"\x16\x03\x01 hello there\r\n\r\n")
        header = await raw(server.port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        length = await raw(server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
        huge = await raw(server.port, b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n")
        async with httpx.AsyncClient(base_url=server.url) as http:
            fine = await http.get("/ok")
    for answer in (garbage, header, length, huge):
        assert answer.startswith(b"HTTP/1.1 400"), answer[:60]
    assert fine.status_code == 200


async def test_drop_connection_closes_without_an_answer() -> None:
    """An app raising DropConnection: the client sees its connection closed with no byte of
    answer (httpx: a transport error, no response), and the server serves the next request."""
    async with serve(echo) as server:
        try:
            data = await raw(server.port, b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
        except ConnectionResetError:
            data = b""
        async with httpx.AsyncClient(base_url=server.url) as http:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await http.post("/drop", json={"a": 1})
            fine = await http.get("/after")
    assert data == b""
    assert fine.status_code == 200


async def test_drop_connection_logs_no_application_error(caplog: pytest.LogCaptureFixture) -> None:
    """A dropped connection is a fault on purpose: uvicorn logs no exception and sends no 500."""
    caplog.set_level(logging.DEBUG)
    async with serve(echo) as server, httpx.AsyncClient(base_url=server.url) as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/drop")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_app_exception_answers_500() -> None:
    """A crashing app answers HTTP 500 and the server keeps serving."""
    async with serve(echo) as server, httpx.AsyncClient(base_url=server.url) as http:
        broken = await http.get("/boom")
        fine = await http.get("/fine")
    assert broken.status_code == 500
    assert fine.status_code == 200


async def test_500_concurrent_connections() -> None:
    """500 simultaneous connections each get their answer."""

    async def one(port: int, n: int) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /slow?n={n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        return data.startswith(b"HTTP/1.1 200") and f"n={n}".encode() in data

    async with serve(echo) as server:
        results = await asyncio.gather(*(one(server.port, n) for n in range(500)))
    assert all(results)


async def test_close_ends_idle_keep_alive_connections() -> None:
    """Leaving serve() closes open keep-alive connections (clients see EOF) and returns."""
    async with serve(echo) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
    rest = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert b"HTTP/1.1" not in rest


async def test_close_ends_a_request_that_never_finishes() -> None:
    """A request still running after the shutdown grace is cut off; serve() returns."""
    limits = ServerLimits(shutdown_grace=0.05)
    async with serve(echo, limits=limits) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
    rest = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert rest == b""


async def test_a_head_that_never_completes_is_closed() -> None:
    """A connection that sends part of a request head and stops is closed after the header
    timeout (uvicorn alone keeps it forever); one that sends nothing is closed too."""
    limits = ServerLimits(header_timeout=0.2)
    async with serve(echo, limits=limits) as server:
        partial = await raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n", within=10)
        silent = await raw(server.port, b"", within=10)
        async with httpx.AsyncClient(base_url=server.url) as http:
            fine = await http.get("/ok")
    assert partial == b"" and silent == b""
    assert fine.status_code == 200


async def test_a_keep_alive_connection_is_not_cut_by_the_header_timeout() -> None:
    """Between requests the keep-alive timeout rules: an idle connection longer than the header
    timeout still serves its next request."""
    limits = ServerLimits(header_timeout=0.1, keep_alive=5)
    async with serve(echo, limits=limits) as server, httpx.AsyncClient(base_url=server.url) as http:
        first = await http.get("/one")
        await asyncio.sleep(0.3)
        second = await http.get("/two")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.extensions["network_stream"] is second.extensions["network_stream"]


async def test_a_body_that_never_completes_is_closed() -> None:
    """A body that stalls is cut off after the body timeout; the app sees a disconnect."""
    limits = ServerLimits(body_timeout=0.2)
    async with serve(echo, limits=limits) as server:
        stalled = await raw(
            server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", within=10
        )
    assert stalled == b""


async def test_connections_beyond_the_cap_are_closed_at_once() -> None:
    """With max_connections=3, a fourth open connection is closed before any request."""
    limits = ServerLimits(max_connections=3, header_timeout=30)
    async with serve(echo, limits=limits) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        extra = await raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=server.url) as http:
            fine = await http.get("/ok")
    assert extra == b""
    assert fine.status_code == 200


async def test_port_in_use_is_an_os_error() -> None:
    """Binding a taken port raises OSError (uvicorn's own binding would exit the process)."""
    async with serve(echo) as server:
        with pytest.raises(OSError):
            async with serve(echo, port=server.port):
                pass


async def test_access_log_never_shows_a_token(caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn's access log line for a callback keeps its path but not its token."""
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with serve(echo) as server, httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/kie/callback/job-1?token=SeCrEtToKeN123&x=1", json={})
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert lines and "/kie/callback/job-1?token=[redacted]&x=1" in lines[0]
    assert not [line for line in lines if "SeCrEtToKeN123" in line]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", [["sim"], ["webhook", "serve"]], ids=["sim", "webhook serve"])
async def test_command_line_servers_stop_cleanly_on_a_signal(
    command: list[str], sig: signal.Signals
) -> None:
    """`kierouter sim` and `kierouter webhook serve` serve until SIGINT or SIGTERM, then stop
    with exit code 0 and no traceback, an open keep-alive connection notwithstanding."""
    env = {**os.environ, "KIEROUTER_WEBHOOK_TOKEN_SECRET": "signal-test-secret"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kierouter.cli", *command, "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/kie/callback/x")
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 20)
    err = (await proc.stderr.read()).decode()
    if command == ["sim"]:  # KIE answers an unknown path with HTTP 200 and code 404 inside
        assert answer.status_code == 200 and answer.json()["code"] == 404
    else:
        assert answer.status_code in (404, 405)
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("POST /kie/callback/j?token=abcDEF123 HTTP/1.1", "abcDEF123"),
        ("GET /x?a=1&api_key=k-998877&b=2", "k-998877"),
        ("headers: {'x-webhook-signature': 'c2lnbmF0dXJl'}", "c2lnbmF0dXJl"),
        ("Authorization: Bearer sk-live-424242", "sk-live-424242"),
    ],
)
def test_redacting_filter_scrubs_credentials(line: str, secret: str) -> None:
    """RedactingFilter removes credential values from a record's message and its arguments,
    leaving the rest of the line readable."""
    from kierouter.webhooks import RedactingFilter

    for msg, args in ((line, ()), ("%s - %d", (line, 200))):
        record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, msg, args, None)
        assert RedactingFilter().filter(record)
        text = record.getMessage()
        assert secret not in text and "[redacted]" in text
        assert text.split("[redacted]")[0] == (msg % args if args else msg).split(secret)[0]
