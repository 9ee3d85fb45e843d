"""kierouter._http_server: the small ASGI server the emulator and webhook receiver run on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from kierouter._http_server import DropConnection, serve


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answer with the scope's request fields and the body; some paths misbehave on purpose."""
    message = await receive()
    if scope["path"] == "/drop":
        raise DropConnection
    if scope["path"] == "/boom":
        raise RuntimeError("app bug")
    if scope["path"] == "/slow":
        await asyncio.sleep(0.05)
    body = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(),
        "body": message["body"].decode(),
        "host": dict(scope["headers"]).get(b"host", b"").decode(),
        "client": scope["client"][0],
    }
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def raw(port: int, data: bytes) -> bytes:
    """Send raw bytes on a new connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
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


async def test_bad_request_line_gets_400_and_the_server_lives_on() -> None:
    """Garbage, a bad version and a bad header answer 400/505; the next request still works."""
    async with serve(echo) as server:
        garbage = await raw(server.port, b"\x16\x03\x01 hello there\r\n\r\n")
        version = await raw(server.port, b"GET / HTTP/9.9\r\n\r\n")
        header = await raw(server.port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        length = await raw(server.port, b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        chunked = await raw(server.port, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        huge = await raw(server.port, b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n")
        async with httpx.AsyncClient(base_url=server.url) as http:
            fine = await http.get("/ok")
    assert garbage.startswith(b"HTTP/1.1 400")
    assert version.startswith(b"HTTP/1.1 505")
    assert header.startswith(b"HTTP/1.1 400")
    assert length.startswith(b"HTTP/1.1 400")
    assert chunked.startswith(b"HTTP/1.1 501")
    assert huge.startswith(b"HTTP/1.1 431")
    assert fine.status_code == 200


async def test_drop_connection_closes_without_an_answer() -> None:
    """An app raising DropConnection makes the client see a closed socket and no bytes."""
    async with serve(echo) as server:
        try:
            data = await raw(server.port, b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
        except ConnectionResetError:
            data = b""
        async with httpx.AsyncClient(base_url=server.url) as http:
            fine = await http.get("/after")
    assert data == b""
    assert fine.status_code == 200


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
