"""The webhook receiver on its real server (uvicorn), tried as an attacker and as an operator:
huge and endless bodies, stalled connections, chunked callbacks, and what the logs show.

The memory tests run ``kierouter webhook serve`` as a subprocess and read its peak resident
size (``VmHWM`` in ``/proc/PID/status``) before and after the attack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter._router import PollConfig, Router, WebhookConfig
from kierouter._server import RECEIVER_LIMITS, serve
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator
from kierouter.webhooks import WebhookReceiver, sign

CLI = [sys.executable, "-m", "kierouter.cli"]
SECRET = "server-suite-token-secret"
HMAC_KEY = "server-suite-hmac-key-0123"
MB = 1_000_000
CAP = 256 * 1024
CHUNK = b"x" * 65536

needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def _signed(task_id: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"X-Webhook-Timestamp": ts, "X-Webhook-Signature": sign(HMAC_KEY, task_id, ts)}


def _peak_kb(pid: int) -> int:
    """The process's peak resident set size, kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@dataclass
class Served:
    """A running ``kierouter webhook serve``."""

    pid: int
    url: str
    port: int
    spool: Path
    stderr: Path

    def callback_path(self, job: str) -> str:
        return f"/kie/callback/{job}?token={WebhookReceiver(token_secret=SECRET).token_for(job)}"


@contextlib.asynccontextmanager
async def webhook_serve(tmp_path: Path, *options: str) -> AsyncIterator[Served]:
    """Run ``kierouter -v webhook serve`` on a free port until the block ends (SIGTERM)."""
    spool = tmp_path / "spool.sqlite"
    stderr = tmp_path / "serve.log"
    env = {**os.environ, "KIEROUTER_WEBHOOK_TOKEN_SECRET": SECRET, "KIE_WEBHOOK_HMAC_KEY": HMAC_KEY}
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "-v", "webhook", "serve", "--port", "0", "--spool", str(spool), *options,
            stdout=asyncio.subprocess.PIPE, stderr=err, env=env,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        yield Served(proc.pid, url, int(url.rsplit(":", 1)[1]), spool, stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
        assert code == 0, stderr.read_text()


async def _warm_up(served: Served) -> None:
    """One accepted and one refused callback: every code path the attacks use is loaded."""
    async with httpx.AsyncClient(base_url=served.url) as http:
        body = {"code": 200, "data": {"taskId": "warm", "state": "success"}}
        ok = await http.post(served.callback_path("warm"), json=body, headers=_signed("warm"))
        big = await http.post(served.callback_path("warm"), content=b"x" * (CAP + 1),
                              headers={"Content-Type": "application/json"})  # fmt: skip
    assert (ok.status_code, big.status_code) == (200, 413)


def _attack(served: Served, head: bytes, chunks: Iterator[bytes], total: int) -> tuple[bytes, int]:
    """Send ``head``, then stream ``chunks`` (up to ``total`` bytes) while another thread reads
    the answer; returns (answer, body bytes sent). Plain blocking sockets: the server answers
    and closes with the body still coming, and the kernel then resets the connection, which
    asyncio's streams report without the bytes that arrived before the reset."""
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    answer = bytearray()

    def read() -> None:
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                answer.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    sent = 0
    try:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
            if sent >= total:
                break
    except OSError:
        pass  # the server closed the connection: the point of the test
    reader.join(30)
    sock.close()
    return bytes(answer), sent


def _head(served: Served, framing: str) -> bytes:
    return (
        f"POST {served.callback_path('job-big')} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _endless(framed: bool) -> Iterator[bytes]:
    """Body bytes for ever: raw, or as HTTP/1.1 chunks."""
    piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if framed else CHUNK
    while True:
        yield piece


#: (framing header, chunked?, what the reliability page calls it, how it is refused)
HUGE_BODIES = {
    "declared": (f"Content-Length: {60 * MB}", False, "60 MB body declared by Content-Length",
                 "413 from the headers"),
    "chunked": ("Transfer-Encoding: chunked", True, "60 MB chunked body, no length",
                "413 at the 256 KiB cap"),
}  # fmt: skip


@needs_proc
@pytest.mark.parametrize("kind", list(HUGE_BODIES))
async def test_a_60_mb_body_is_refused_without_being_read(
    kind: str, tmp_path: Path, reliability: Any
) -> None:
    """A callback declaring 60 MB is answered 413 from its headers alone; one streaming 60 MB
    chunked is counted as it arrives and cut off at the 256 KiB cap. Either way the server
    closes the connection, most of the body never gets out, and its peak memory grows < 5 MB."""
    framing, chunked, what, refused = HUGE_BODIES[kind]
    async with webhook_serve(tmp_path) as served:
        await _warm_up(served)
        before = _peak_kb(served.pid)
        answer, sent = await asyncio.to_thread(
            _attack, served, _head(served, framing), _endless(chunked), 60 * MB
        )
        growth = _peak_kb(served.pid) - before
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert sent < 30 * MB
    assert growth < 5 * 1024, f"peak RSS grew by {growth} kB"
    reliability.record(
        "webhook",
        f"{what} (real server)",
        tried=1,
        outcome=f"{refused}; {sent / MB:.1f} MB got out before the close; "
        f"peak RSS +{growth / 1024:.1f} MB",
    )


async def test_200_stalled_bodies_are_all_closed_after_the_read_timeout(
    tmp_path: Path, reliability: Any
) -> None:
    """200 connections send a valid callback's headers and 10 of its 1,000 body bytes, then
    stall: with --read-timeout 1 each gets 408 and is closed, and the server serves on."""
    async with webhook_serve(tmp_path, "--read-timeout", "1") as served:
        head = (
            f"POST {served.callback_path('job-stall')} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"code":20'
        ).encode()
        started = time.monotonic()

        async def stall() -> tuple[bytes, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(head)
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(), 30)  # EOF: the server closed it
            finally:
                writer.close()
            return answer, time.monotonic() - started

        results = await asyncio.gather(*(stall() for _ in range(200)))
        async with httpx.AsyncClient(base_url=served.url) as http:
            body = {"code": 200, "data": {"taskId": "after", "state": "success"}}
            after = await http.post(
                served.callback_path("job-after"), json=body, headers=_signed("after")
            )
    closed = [answer for answer, _ in results if answer.startswith(b"HTTP/1.1 408")]
    slowest = max(at for _, at in results)
    assert len(closed) == 200
    assert after.status_code == 200
    reliability.record(
        "webhook",
        "connections stalled mid-body (real server, read timeout 1 s)",
        tried=200,
        outcome=f"all 200 answered 408 and closed, the last {slowest:.1f} s after they started",
    )


async def test_a_chunked_valid_callback_is_accepted(reliability: Any) -> None:
    """A signed callback sent chunked (no Content-Length) is accepted and wakes its job."""
    receiver = WebhookReceiver(token_secret=SECRET, hmac_key=HMAC_KEY)
    waiter = receiver.expect("job-chunked")
    payload = b'{"code":200,"msg":"ok","data":{"taskId":"task-c","state":"success"}}'

    async def parts() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 7):
            yield payload[i : i + 7]

    async with (
        serve(receiver, limits=RECEIVER_LIMITS) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        response = await http.post(
            f"/kie/callback/job-chunked?token={receiver.token_for('job-chunked')}",
            content=parts(),
            headers={"Content-Type": "application/json", **_signed("task-c")},
        )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 200
    assert [h.task_id for h in waiter.take()] == ["task-c"]
    reliability.record("webhook", "valid callback sent chunked", tried=1, outcome="accepted 200")


async def test_refused_requests_are_logged_without_their_query(
    tmp_path: Path, reliability: Any
) -> None:
    """Every answer, refusals included, is one INFO line with method, path, status and reason;
    no line carries the query string or the token."""
    async with webhook_serve(tmp_path) as served:
        token = served.callback_path("job-log").split("token=")[1]
        async with httpx.AsyncClient(base_url=served.url) as http:
            bad_token = await http.post("/kie/callback/job-log?token=WrongToken99", json={})
            unsigned = await http.post(served.callback_path("job-log"), json={"taskId": "t"})
            get = await http.get(served.callback_path("job-log"))
            other = await http.post(f"/elsewhere?token={token}", json={})
            big = await http.post(served.callback_path("job-log"), content=b"x" * (CAP + 1),
                                  headers={"Content-Type": "application/json"})  # fmt: skip
    log = served.stderr.read_text()
    statuses = [r.status_code for r in (bad_token, unsigned, get, other, big)]
    assert statuses == [401, 401, 405, 404, 413]
    for line in (
        "POST /kie/callback/job-log -> 401 bad token",
        "POST /kie/callback/job-log -> 401 unsigned callback",
        "GET /kie/callback/job-log -> 405 method not allowed",
        "POST /elsewhere -> 404 not a callback path",
        "POST /kie/callback/job-log -> 413 body too large",
    ):
        assert line in log, log
    assert "token=" not in log and token not in log and "WrongToken99" not in log
    reliability.record(
        "webhook",
        "refused requests (401, 404, 405, 413) in the operator's log",
        tried=5,
        outcome="each logged at INFO with path, status and reason; no query string, no token",
    )


# -- a router and the emulator on uvicorn, every logger at DEBUG ------------------------------

SEEDREAM = "bytedance/seedream-v4-text-to-image"
ONE = Policy(name="seedream-only", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,)))


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_no_token_in_any_log_line(caplog: pytest.LogCaptureFixture, reliability: Any) -> None:
    """A router receiving the emulator's callbacks on uvicorn, with every logger at DEBUG
    (uvicorn's access log, httpx's request lines, kierouter's own): no line carries a job's
    callback token, the HMAC key or the token secret, though the access log shows each
    callback's path."""
    import kierouter_seedream

    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore", "kierouter"):
        caplog.set_level(logging.DEBUG, logger=name)
    jobs = [f"log-job-{i}" for i in range(5)]
    async with Emulator(time_scale=200.0, hmac_key=HMAC_KEY) as emu:
        client = KieClient(emu.api_key, base_url=emu.base_url, read_rate=500)
        webhook = WebhookConfig(listen="127.0.0.1:0", hmac_key=HMAC_KEY, token_secret=SECRET)
        async with Router(
            [kierouter_seedream],
            client=client,
            latency_scale=1 / 200.0,
            allow_private_downloads=True,
            webhook=webhook,
            poll=PollConfig(webhook_fallback=100, deadline_factor=200),
        ) as router:
            await asyncio.gather(*(router.generate("a fox", policy=ONE, job_key=j) for j in jobs))
            tokens = [router.webhook_app.token_for(j) for j in jobs]
        await client.aclose()
    lines = [record.getMessage() for record in caplog.records]
    access = [line for line in lines if "/kie/callback/log-job-" in line and "HTTP/1.1" in line]
    assert len(access) >= len(jobs)  # the access log was on and saw every callback
    leaks = [line for line in lines for s in (*tokens, HMAC_KEY, SECRET) if s in line]
    assert not leaks
    reliability.record(
        "secrets",
        "callback tokens in log lines (uvicorn access log, httpx, kierouter; DEBUG)",
        tried=len(lines),
        outcome=f"{len(lines)} log lines, {len(access)} of them callback requests; no token",
    )
