"""Several workers behind one URL: a FastAPI app under ``uvicorn --workers 2`` (a real
subprocess) with the receiver mounted and a callback spool. KIE's (the emulator's) callbacks
reach whichever worker accepts the connection; every job still completes by its callback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator
from kierouter.webhooks import WebhookReceiver

pytest.importorskip("fastapi")

APP_DIR = Path(__file__).parent / "fixtures" / "webhook_workers"
SECRET = "workers-suite-token-secret"
SCALE = 20.0
JOBS = 20
#: rounds of JOBS jobs at most, until both workers own jobs and a callback crossed
ROUNDS = 4
SEEDREAM = "bytedance/seedream-v4-text-to-image"
CALLBACK_LINE = re.compile(r"^(\d+) kierouter\.webhooks: POST /kie/callback/(\S+) -> 200 (\w+)$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def uvicorn_workers(emu: Emulator, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """``uvicorn workers_app:app --workers 2`` until the block ends; (its URL, its output)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    output = tmp_path / "uvicorn.log"
    env = {
        **os.environ,
        "KIE_API_KEY": emu.api_key,
        "KIE_BASE_URL": emu.base_url,
        "PUBLIC_URL": url,
        "KIEROUTER_WEBHOOK_TOKEN_SECRET": SECRET,
        "KIEROUTER_CALLBACK_SPOOL": str(tmp_path / "callbacks.sqlite"),
        "WORKERS_TIME_SCALE": str(SCALE),
    }
    with output.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "workers_app:app", "--app-dir", str(APP_DIR),
            "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while output.read_text().count("Application startup complete") < 2:
            assert proc.returncode is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            await asyncio.sleep(0.1)
        yield url, output
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_callbacks_spread_over_two_workers_all_complete_by_callback(
    tmp_path: Path, reliability: Any
) -> None:
    """Rounds of 20 jobs posted to a 2-worker FastAPI app: both workers receive callbacks,
    callbacks that reached the worker not running their job go through the spool, and every job
    completes by its callback (none fell back to polling). No token appears in uvicorn's output."""
    async with Emulator(time_scale=SCALE, create_limit=200) as emu:
        async with uvicorn_workers(emu, tmp_path) as (url, output):

            async def one(i: int) -> dict[str, Any]:
                # a connection per request, so that the kernel spreads the jobs over the workers
                async with httpx.AsyncClient(base_url=url, timeout=120) as http:
                    response = await http.post(
                        "/images",
                        params={"prompt": f"a fox, take {i}", "job_key": f"w-{i}"},
                        headers={"Connection": "close"},
                    )
                assert response.status_code == 200, response.text
                answer: dict[str, Any] = response.json()
                return answer

            # Which worker accepts a connection is the kernel's choice: one may take every job
            # of a round (seen: 80 of 80), and the emulator's callbacks may all land on the
            # owner. Rounds go on (at most ROUNDS) until callbacks reached both workers and one
            # reached the worker that did not own its job: what is under test.
            answers: list[dict[str, Any]] = []
            for _ in range(ROUNDS):
                start = len(answers)
                answers += await asyncio.gather(*(one(start + i) for i in range(JOBS)))
                seen = [m for m in map(CALLBACK_LINE.match, output.read_text().splitlines()) if m]
                if {m.group(3) for m in seen} == {"accepted", "spooled"}:
                    break  # callbacks reached both workers, some the one not running their job
            stats = emu.stats()
        log = output.read_text()
    jobs = len(answers)
    owners = {f"w-{i}": answer["pid"] for i, answer in enumerate(answers)}
    received = [m.groups() for m in map(CALLBACK_LINE.match, log.splitlines()) if m]
    by_worker = {pid for pid, _, _ in received}
    crossed = [job for pid, job, how in received if how == "spooled"]
    by_callback = [job for job, a in zip(owners, answers, strict=True) if "callback" in a["events"]]
    polled = [job for job, a in zip(owners, answers, strict=True) if "polled" in a["events"]]

    assert all(a["model"] == SEEDREAM for a in answers)
    assert len(by_worker) == 2, "the callbacks did not reach both workers"
    assert crossed, "no callback reached a worker other than its job's"
    assert all(str(owners[job]) != pid for pid, job, how in received if how == "spooled")
    assert log.count("picked up from the spool") == len(crossed)
    assert len(by_callback) == jobs and not polled
    assert stats["status_reads"] == jobs  # one confirming read per job: nobody polled
    tokens = [WebhookReceiver(token_secret=SECRET).token_for(job) for job in owners]
    assert "/kie/callback/" in log and not [t for t in tokens if t in log]
    per_worker = {pid: sum(1 for p, _, _ in received if p == pid) for pid in by_worker}
    reliability.record(
        "webhook",
        "2 uvicorn workers, callbacks landing on either (FastAPI, callback spool)",
        tried=jobs,
        outcome=f"jobs per worker {sorted(Counter(owners.values()).values())}; callbacks per "
        f"worker {sorted(per_worker.values())}; {len(crossed)} crossed "
        f"through the spool; {len(by_callback)} of {jobs} completed by callback, 0 polled",
        lost=jobs - len(by_callback),
    )
