"""Webhook mode end to end: KIE's (the emulator's) signed callbacks complete jobs over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import kierouter as kr
from kierouter._router import PollConfig, Router, WebhookConfig
from kierouter._server import serve
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator
from kierouter.webhooks import sign

SCALE = 200.0
HMAC_KEY = "whsec-router-test-0123456789"
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
#: Exactly two rungs, one model each, whatever else the plugins register.
TWO = Constraints(allow=(SEEDREAM, NANO))
LADDER = Policy(name="two-rungs", ladder=("seedream", "nano-banana"), constraints=TWO)


def _plugins() -> list[Any]:
    """The real Seedream and Nano Banana plugins, registered in-process."""
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        time_scale=SCALE, hmac_key=HMAC_KEY, create_limit=500, create_window=1.0
    ) as emulator:
        yield emulator


@pytest.fixture
async def make_router(emu: Emulator) -> AsyncIterator[Callable[..., Router]]:
    made: list[tuple[Router, KieClient]] = []

    def factory(**kw: Any) -> Router:
        client = KieClient(
            emu.api_key,
            base_url=emu.base_url,
            create_limit=500,
            create_window=1.0,
            read_rate=500,  # the emulator has no read limit; KIE's 10/s would only slow the test
        )
        kw.setdefault("webhook", WebhookConfig(listen="127.0.0.1:0", hmac_key=HMAC_KEY))
        router = Router(
            _plugins(),
            client=client,
            latency_scale=1 / SCALE,
            allow_private_downloads=True,
            **kw,
        )
        made.append((router, client))
        return router

    yield factory
    for router, client in made:
        await router.aclose()
        await client.aclose()


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_fifty_jobs_one_status_read_each(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """50 jobs complete by signed callbacks (some duplicated) with exactly one read each."""
    # Polling is only the fallback for lost callbacks: give callbacks ample time (a loaded CI
    # machine delays them), so every read the emulator counts is a callback's confirmation.
    emu.inject("duplicate_callback", rate=0.3)
    patient = PollConfig(webhook_fallback=20, deadline_factor=40)
    async with make_router(poll=patient) as router:
        results = await asyncio.gather(
            *(router.generate(f"a red fox, take {i}", policy=LADDER) for i in range(50))
        )
        await emu.wait_callbacks(50)
    stats = emu.stats()
    assert all(r.served_model == SEEDREAM for r in results)
    assert stats["created_total"] == 50
    assert stats["status_reads"] == 50
    assert sum(router.status_reads.values()) == 50
    assert router.webhook_app.stats["accepted"] == 50
    assert stats["faults"].get("duplicate_callback", 0) > 0
    assert sum(r.credits for r in results) == stats["credits_charged"]


async def test_forged_unsigned_stale_and_duplicate_callbacks_change_nothing(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """Bad callbacks are refused with 401/404 and cause no status read; the real one completes."""
    emu.configure("seedream", latency=(1000, 1000))  # stays pending until the clock is advanced
    router = make_router(poll=PollConfig(webhook_fallback=1000, deadline_factor=1000))
    await router.start()
    job = asyncio.create_task(router.generate("a red fox", policy=LADDER, job_key="job-forge"))
    await _until(lambda: emu.stats()["created_total"] == 1)
    task_id = emu.tasks()[0]["taskId"]
    url = router.webhook_app.callback_url(router.public_url or "", "job-forge")
    body = {"code": 200, "msg": "ok", "data": {"taskId": task_id, "state": "success"}}
    now = int(time.time())

    def signed(at: int, key: str = HMAC_KEY) -> dict[str, str]:
        return {"X-Webhook-Timestamp": str(at), "X-Webhook-Signature": sign(key, task_id, str(at))}

    async with httpx.AsyncClient() as http:
        answers = [
            (await http.post(url, json=body)).status_code,  # unsigned
            (await http.post(url, json=body, headers=signed(now, "forged-key-000000"))).status_code,
            (await http.post(url, json=body, headers=signed(now - 3600))).status_code,  # stale
            (
                await http.post(url.split("?")[0] + "?token=x", json=body, headers=signed(now))
            ).status_code,
            (
                await http.post(
                    url.replace("job-forge", "job-other"), json=body, headers=signed(now)
                )
            ).status_code,
        ]
    assert answers == [401, 401, 401, 401, 404]
    assert emu.stats()["status_reads"] == 0
    assert not job.done()

    emu.advance(1000)  # the task finishes; the emulator posts its signed callback
    result = await asyncio.wait_for(job, 5)
    assert result.served_model == SEEDREAM
    assert result.task_ids == (task_id,)
    assert emu.stats()["status_reads"] == 1

    async with httpx.AsyncClient() as http:  # a replay after the job finished
        replay = await http.post(url, json=body, headers=signed(int(time.time())))
    assert replay.status_code == 200
    assert emu.stats()["status_reads"] == 1


async def test_lost_create_answer_completes_by_callback(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """The create's answer is lost (connection dropped after KIE created the task): the callback,
    carrying our job key, still completes the job, and nothing is created twice."""
    emu.inject("drop_connection", paths="create", count=1)
    events: list[kr.Event] = []
    router = make_router(event_sinks=[events.append])
    result = await router.generate("a red fox", policy=LADDER, job_key="job-lost")
    task_id = emu.tasks()[0]["taskId"]
    assert emu.stats()["created_total"] == 1
    assert result.served_model == SEEDREAM
    assert result.task_ids == (task_id,)
    assert "callback" in result.attempts[0].reason
    assert "reconciled" in [e.kind for e in events]
    assert result.credits == emu.stats()["credits_charged"]


async def test_lost_create_answer_without_webhook_is_never_resubmitted(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """Without callbacks a lost create answer stops the job as ambiguous: no second create."""
    emu.inject("drop_connection", paths="create", count=1)
    router = make_router(webhook=None)
    with pytest.raises(kr.AmbiguousSubmissionError) as info:
        await router.generate("a red fox", policy=LADDER, job_key="job-lost")
    assert [a.outcome for a in info.value.attempts] == ["ambiguous"]
    assert info.value.job_key == "job-lost"
    assert emu.stats()["created_total"] == 1


async def test_lost_callback_falls_back_to_polling(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """When KIE's callback never arrives, the job polls after the fallback window and finishes."""
    emu.inject("lost_callback")
    router = make_router()
    result = await router.generate("a red fox", policy=LADDER)
    assert result.served_model == SEEDREAM
    assert emu.stats()["callbacks_sent"] == 0
    assert emu.stats()["status_reads"] >= 1


async def test_receiver_mounted_in_your_own_server(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """router.webhook_app served by your own ASGI server (public_url mode) receives callbacks."""
    router = make_router(webhook=WebhookConfig(public_url="http://placeholder", hmac_key=HMAC_KEY))
    async with serve(router.webhook_app, host="127.0.0.1", port=0) as server:
        router._ctx.public_url = server.url  # what the user would have configured
        result = await router.generate("a red fox", policy=LADDER)
    assert result.served_model == SEEDREAM
    assert emu.stats()["status_reads"] == 1
    assert emu.tasks()[0]["callBackUrl"].startswith(server.url + "/kie/callback/")


async def test_reconcile_learns_the_task_from_its_callback(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """reconcile(job_key) turns an ambiguous create into a known task via its callback."""
    router = make_router(
        webhook=WebhookConfig(listen="127.0.0.1:0", token_secret="shared-secret-1")
    )
    await router.start()
    # A create sent earlier (e.g. by a process that then died) with this job's callback URL.
    provider = router.registry.provider(SEEDREAM)
    card = router.registry.card(SEEDREAM)
    url = router.webhook_app.callback_url(router.public_url or "", "job-orphan")
    prepared = provider.prepare(card, kr.ImageRequest(prompt="a fox"), callback_url=url)
    data = await router.client.create(prepared.path, prepared.body)
    status = await router.reconcile("job-orphan", model=SEEDREAM, timeout=5)
    assert status is not None
    assert status.task_id == provider.parse_create(data)
    assert status.state == "success"
    assert await router.reconcile("job-never", model=SEEDREAM, timeout=0.05) is None


def test_webhook_config_repr_hides_secrets() -> None:
    """WebhookConfig's repr shows neither the HMAC key nor the token secret."""
    config = WebhookConfig(
        public_url="https://x.test", hmac_key=HMAC_KEY, token_secret="tok-sec-123"
    )
    assert HMAC_KEY not in repr(config) and "tok-sec-123" not in repr(config)
