"""The callback spool: a callback that reaches a process not waiting for its job is accepted
into a shared SQLite file, and the process that waits picks it up within a second."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter import ConfigurationError, Event
from kierouter._router import PollConfig, Router, WebhookConfig
from kierouter._spool import CallbackSpool
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator
from kierouter.webhooks import WebhookReceiver, sign

SECRET = "spool-suite-token-secret"
HMAC_KEY = "spool-suite-hmac-key-0123"


def _body(task_id: str) -> dict[str, Any]:
    return {"code": 200, "msg": "ok", "data": {"taskId": task_id, "state": "success"}}


async def _post(receiver: WebhookReceiver, job: str, task_id: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="https://hooks.test") as http:
        return await http.post(
            f"/kie/callback/{job}?token={receiver.token_for(job)}", json=_body(task_id)
        )


def _pair(tmp_path: Path) -> tuple[WebhookReceiver, WebhookReceiver]:
    """Two receivers as two worker processes would have: one secret, one spool file."""
    spool = tmp_path / "callbacks.sqlite"
    return (
        WebhookReceiver(token_secret=SECRET, spool=spool),
        WebhookReceiver(token_secret=SECRET, spool=spool),
    )


async def test_a_callback_for_another_workers_job_reaches_it_within_a_second(
    tmp_path: Path,
) -> None:
    """Worker B gets the callback of a job worker A waits for: B answers 200 (spooled), and
    A's job is woken by it within a second."""
    owner, other = _pair(tmp_path)
    waiter = owner.expect("job-1")
    response = await _post(other, "job-1", "task-1")
    assert response.status_code == 200
    assert response.json() == {"code": 200, "msg": "success"}
    assert await waiter.wait(1.0)
    assert [h.task_id for h in waiter.take()] == ["task-1"]
    assert other.stats == {"spooled": 1}
    assert owner.stats == {"from_spool": 1}
    owner.forget("job-1")
    await owner.aclose()
    await other.aclose()


async def test_a_callback_spooled_before_the_job_waits_is_found_when_it_does(
    tmp_path: Path,
) -> None:
    """A callback spooled while nobody waited (a process restarting, a batch resuming) wakes
    the job as soon as it starts waiting."""
    owner, other = _pair(tmp_path)
    assert (await _post(other, "job-2", "task-2")).status_code == 200
    waiter = owner.expect("job-2")
    assert await waiter.wait(1.0)
    assert [h.task_id for h in waiter.take()] == ["task-2"]
    owner.forget("job-2")
    await owner.aclose()


async def test_duplicates_through_the_spool_wake_the_job_once(tmp_path: Path) -> None:
    """KIE's retries of one callback, landing on both workers, make one hint: the spool keeps
    one row per (job, task) and the waiter ignores a task it already has."""
    owner, other = _pair(tmp_path)
    waiter = owner.expect("job-3")
    answers = [(await _post(other, "job-3", "task-3")).json()["code"] for _ in range(3)]
    direct = await _post(owner, "job-3", "task-3")
    await asyncio.sleep(0.6)  # two reads of the spool
    assert answers == [200, 200, 200] and direct.status_code == 200
    assert [h.task_id for h in waiter.take()] == ["task-3"]
    assert other.stats == {"spooled": 1, "duplicate": 2}
    owner.forget("job-3")
    await owner.aclose()


async def test_a_bad_token_is_refused_and_never_spooled(tmp_path: Path) -> None:
    """A callback with another secret's token is refused 401 and writes nothing."""
    _, other = _pair(tmp_path)
    stranger = WebhookReceiver(token_secret="another-secret-entirely")
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="https://hooks.test") as http:
        response = await http.post(
            f"/kie/callback/job-4?token={stranger.token_for('job-4')}", json=_body("task-4")
        )
    assert response.status_code == 401
    assert CallbackSpool(tmp_path / "callbacks.sqlite").read(0) == []


def test_a_spool_needs_a_shared_token_secret(tmp_path: Path) -> None:
    """A spool with a random per-process token secret could never verify another worker's
    jobs: refused with an error naming token_secret."""
    with pytest.raises(ConfigurationError, match="token_secret"):
        WebhookReceiver(spool=tmp_path / "callbacks.sqlite")
    with pytest.raises(ConfigurationError, match="token_secret"):
        Router([], api_key="k", webhook=WebhookConfig(public_url="https://x", spool="s.sqlite"))


async def test_an_unwritable_spool_answers_503_so_kie_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the spool cannot be written the callback is not acknowledged (503): KIE retries it,
    and a retry may reach the waiting worker."""
    receiver = WebhookReceiver(token_secret=SECRET, spool=tmp_path)  # a directory, not a file
    with caplog.at_level(logging.WARNING, logger="kierouter.webhooks"):
        response = await _post(receiver, "job-5", "task-5")
    assert response.status_code == 503
    assert "cannot write the callback spool" in caplog.text


def test_old_rows_are_pruned(tmp_path: Path) -> None:
    """Rows older than the retention are deleted by a writer; newer ones stay."""
    path = tmp_path / "callbacks.sqlite"
    spool = CallbackSpool(path, retention=3600)
    assert spool.put("job-old", "task-old", {"a": 1})
    spool.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE callbacks SET received_at = ?", (time.time() - 7200,))
    spool = CallbackSpool(path, retention=3600)
    assert spool.put("job-new", "task-new", {"b": 2})
    assert [(job, task) for _, job, task, _ in spool.read(0)] == [("job-new", "task-new")]
    spool.close()


# -- `kierouter webhook serve --spool` in front of a router ------------------------------------

CLI = [sys.executable, "-m", "kierouter.cli"]
SEEDREAM = "bytedance/seedream-v4-text-to-image"
ONE = Policy(name="seedream-only", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,)))


async def test_webhook_serve_spools_callbacks_a_router_completes_jobs_with(
    tmp_path: Path,
) -> None:
    """`kierouter webhook serve --spool FILE` receives every callback; a router on the same
    machine pointed at the same spool completes each job by callback, none by polling."""
    import kierouter_seedream

    spool = tmp_path / "callbacks.sqlite"
    env = {**os.environ, "KIEROUTER_WEBHOOK_TOKEN_SECRET": SECRET, "KIE_WEBHOOK_HMAC_KEY": HMAC_KEY}
    proc = await asyncio.create_subprocess_exec(
        *CLI, "webhook", "serve", "--port", "0", "--spool", str(spool),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    events: list[Event] = []
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        async with Emulator(time_scale=100.0, hmac_key=HMAC_KEY) as emu:
            client = KieClient(emu.api_key, base_url=emu.base_url, read_rate=500)
            webhook = WebhookConfig(public_url=url, token_secret=SECRET, spool=spool)
            async with Router(
                [kierouter_seedream],
                client=client,
                latency_scale=1 / 100.0,
                allow_private_downloads=True,
                webhook=webhook,
                poll=PollConfig(webhook_fallback=50, deadline_factor=100),
                event_sinks=[events.append],
            ) as router:
                results = await asyncio.gather(
                    *(
                        router.generate("a fox", policy=ONE, job_key=f"spooled-{i}")
                        for i in range(5)
                    )
                )
                picked = router.webhook_app.stats.get("from_spool", 0)
            await client.aclose()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert sorted(r.job_key for r in results) == [f"spooled-{i}" for i in range(5)]
    assert picked == 5
    assert {e.job_key for e in events if e.kind == "callback"} == {f"spooled-{i}" for i in range(5)}
    assert not [e for e in events if e.kind == "polled"]
    with sqlite3.connect(spool) as db:
        rows = db.execute("SELECT job_key, body FROM callbacks").fetchall()
    assert sorted(job for job, _ in rows) == [f"spooled-{i}" for i in range(5)]
    assert all(json.loads(body)["data"]["taskId"] for _, body in rows)


def test_signature_is_checked_before_spooling(tmp_path: Path) -> None:
    """With an HMAC key, an unsigned callback for another worker's job is refused, not spooled."""

    async def run() -> int:
        receiver = WebhookReceiver(token_secret=SECRET, hmac_key=HMAC_KEY, spool=tmp_path / "s")
        response = await _post(receiver, "job-6", "task-6")
        ts = str(int(time.time()))
        transport = httpx.ASGITransport(app=receiver)
        async with httpx.AsyncClient(transport=transport, base_url="https://h.test") as http:
            signed = await http.post(
                f"/kie/callback/job-6?token={receiver.token_for('job-6')}",
                json=_body("task-6"),
                headers={"X-Webhook-Timestamp": ts,
                         "X-Webhook-Signature": sign(HMAC_KEY, "task-6", ts)},
            )  # fmt: skip
        assert signed.status_code == 200
        return response.status_code

    assert asyncio.run(run()) == 401
    assert [job for _, job, _, _ in CallbackSpool(tmp_path / "s").read(0)] == ["job-6"]
