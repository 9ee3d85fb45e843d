"""Attacks on the webhook receiver: every bad callback is refused with the right status and
changes nothing; 1,000 callbacks (duplicates included) through a real Router complete each job once.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kierouter._router import PollConfig, Router, WebhookConfig
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator
from kierouter.webhooks import WebhookReceiver, sign

HMAC_KEY = "whsec-attack-suite-5f1e2d3c4b5a"
JOB = "job-1"
TASK = "task-1"
BODY: dict[str, Any] = {
    "code": 200,
    "msg": "Playground task completed successfully.",
    "data": {
        "taskId": TASK,
        "state": "success",
        "resultJson": '{"resultUrls":["https://x/y.png"]}',
    },
}


class _Target:
    """A receiver with one waiting job, and a record of everything that reached the job."""

    def __init__(self) -> None:
        self.notified: list[tuple[str, str]] = []
        self.now = time.time()
        self.receiver = WebhookReceiver(
            hmac_key=HMAC_KEY,
            max_body=4096,
            clock=lambda: self.now,
            on_callback=lambda job, task, body: self.notified.append((job, task)),
        )
        self.waiter = self.receiver.expect(JOB)

    def signed(
        self, task_id: str = TASK, *, skew: float = 0.0, key: str = HMAC_KEY
    ) -> dict[str, str]:
        ts = str(int(self.now + skew))
        return {"X-Webhook-Timestamp": ts, "X-Webhook-Signature": sign(key, task_id, ts)}

    async def post(
        self,
        *,
        job: str = JOB,
        token: str | None = None,
        body: Any = BODY,
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/json",
        method: str = "POST",
        raw_path: str | None = None,
    ) -> httpx.Response:
        path = raw_path or f"/kie/callback/{job}"
        token = self.receiver.token_for(job) if token is None else token
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {**self.signed(), **(headers or {})}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        transport = httpx.ASGITransport(app=self.receiver)
        async with httpx.AsyncClient(transport=transport, base_url="https://hooks.test") as c:
            return await c.request(method, f"{path}?token={token}", content=content, headers=hdrs)

    def unchanged(self) -> bool:
        """Nothing reached the job: no hint queued, no notification, still waiting."""
        return (
            not self.waiter.take()
            and not self.notified
            and self.receiver.waiting() == [JOB]
            and "accepted" not in self.receiver.stats
        )


def _flip(signature: str) -> str:
    first = "B" if signature[0] != "B" else "C"
    return first + signature[1:]


Build = Callable[["_Target"], dict[str, Any]]


def _attacks() -> list[tuple[str, int, Build]]:
    """(attack, expected status, how to post it against a fresh target)."""

    def sig(t: _Target) -> str:
        return t.signed()["X-Webhook-Signature"]

    def ts(t: _Target) -> str:
        return t.signed()["X-Webhook-Timestamp"]

    deep = b"[" * 2000 + b"]" * 2000
    return [
        ("forged signature (other key)", 401, lambda t: {"headers": t.signed(key="not-the-key")}),
        ("tampered signature (one byte)", 401,
         lambda t: {"headers": {"X-Webhook-Signature": _flip(sig(t))}}),
        ("signature of another task", 401, lambda t: {"headers": t.signed("task-other")}),
        ("empty signature headers", 401,
         lambda t: {"headers": {"X-Webhook-Timestamp": "", "X-Webhook-Signature": ""}}),
        ("timestamp 301 s old", 401, lambda t: {"headers": t.signed(skew=-301)}),
        ("timestamp 301 s ahead", 401, lambda t: {"headers": t.signed(skew=301)}),
        ("timestamp a day old", 401, lambda t: {"headers": t.signed(skew=-86_400)}),
        ("timestamp not a number", 401, lambda t: {"headers": {"X-Webhook-Timestamp": "now"}}),
        ("timestamp as float", 401,
         lambda t: {"headers": {"X-Webhook-Timestamp": ts(t) + ".0"}}),
        ("unknown job key", 404, lambda t: {"job": "job-unknown"}),
        ("job key with path traversal", 404,
         lambda t: {"raw_path": "/kie/callback/..%2F..%2Fetc"}),
        ("path outside the callback prefix", 404, lambda t: {"raw_path": "/kie/other/job-1"}),
        ("token of another job", 401, lambda t: {"token": t.receiver.token_for("job-2")}),
        ("token from another receiver", 401,
         lambda t: {"token": WebhookReceiver().token_for(JOB)}),
        ("empty token", 401, lambda t: {"token": ""}),
        ("truncated token", 401, lambda t: {"token": t.receiver.token_for(JOB)[:-1]}),
        ("oversized body (declared)", 413, lambda t: {"body": {**BODY, "pad": "x" * 5000}}),
        ("content type text/plain", 415, lambda t: {"content_type": "text/plain"}),
        ("content type form", 415,
         lambda t: {"content_type": "application/x-www-form-urlencoded"}),
        ("content type missing", 415, lambda t: {"content_type": None}),
        ("content type json-like", 415, lambda t: {"content_type": "application/jsonp"}),
        ("GET instead of POST", 405, lambda t: {"method": "GET"}),
        ("PUT instead of POST", 405, lambda t: {"method": "PUT"}),
        ("truncated JSON", 400, lambda t: {"body": json.dumps(BODY).encode()[:40]}),
        ("not UTF-8", 400, lambda t: {"body": b"\xff\xfe{\x00"}),
        ("JSON array", 400, lambda t: {"body": [BODY]}),
        ("JSON string", 400, lambda t: {"body": "taskId"}),
        ("NaN in JSON", 400,
         lambda t: {"body": b'{"code":200,"data":{"taskId":"task-1","createTime":NaN}}'}),
        ("nested JSON 2,000 deep", 400, lambda t: {"body": deep}),
        ("no taskId", 400, lambda t: {"body": {"code": 200, "data": {"state": "success"}}}),
        ("taskId not a string", 400, lambda t: {"body": {"code": 200, "data": {"taskId": 12345}}}),
    ]  # fmt: skip


ATTACKS = _attacks()


@pytest.mark.parametrize(("attack", "status", "how"), ATTACKS, ids=[a[0] for a in ATTACKS])
async def test_attack_is_refused_and_changes_nothing(
    attack: str, status: int, how: Build, reliability: Any
) -> None:
    """Each forged, stale, misdirected, oversized or malformed callback gets its status code
    and reaches no job: no hint, no notification, the job still waiting."""
    target = _Target()
    response = await target.post(**how(target))
    assert response.status_code == status, response.text
    assert response.json()["code"] == status
    assert target.unchanged()
    reliability.record("webhook", attack, tried=1, outcome=f"refused {status}, nothing changed")


async def test_deeply_nested_json_within_the_size_cap_is_refused(reliability: Any) -> None:
    """A body of 100,000 nested brackets (within max_body) is a 400, not a crashed receiver."""
    target = _Target()
    target.receiver.max_body = 256 * 1024
    response = await target.post(body=b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert target.unchanged()
    reliability.record("webhook", "100,000-deep nested JSON", tried=1, outcome="refused 400")


async def test_streamed_oversized_body_without_length_is_cut_off(reliability: Any) -> None:
    """A chunked body with no Content-Length is cut off at max_body with 413."""
    target = _Target()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"code":200,"data":{"taskId":"task-1","pad":"'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}}'

    transport = httpx.ASGITransport(app=target.receiver)
    url = f"/kie/callback/{JOB}?token={target.receiver.token_for(JOB)}"
    async with httpx.AsyncClient(transport=transport, base_url="https://hooks.test") as c:
        response = await c.post(
            url, content=chunks(), headers={"Content-Type": "application/json", **target.signed()}
        )
    assert response.status_code == 413
    assert target.unchanged()
    reliability.record("webhook", "oversized body (streamed, no length)", tried=1, outcome="413")


async def test_replays_are_acknowledged_once_and_queued_once(reliability: Any) -> None:
    """The same signed callback replayed 20 times queues one hint; replays after the job
    finished are answered 200 and reach nothing; a replay with its old timestamp after the
    window closed is refused."""
    target = _Target()
    headers = target.signed()
    answers = [(await target.post(headers=headers)).status_code for _ in range(20)]
    assert answers == [200] * 20
    assert [h.task_id for h in target.waiter.take()] == [TASK]
    assert target.notified == [(JOB, TASK)]
    assert target.receiver.stats == {"accepted": 1, "duplicate": 19}

    target.receiver.forget(JOB)
    late = [(await target.post(headers=headers)).status_code for _ in range(5)]
    assert late == [200] * 5
    assert not target.waiter.take() and target.notified == [(JOB, TASK)]

    target.receiver.expect(JOB)
    target.now += 301  # the captured headers are now outside the window
    assert (await target.post(headers=headers)).status_code == 401
    assert not target.waiter.take() and target.notified == [(JOB, TASK)]
    reliability.record(
        "webhook",
        "replayed signed callback",
        tried=26,
        outcome="1 hint; 24 acked as duplicate; stale replay refused 401",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    token_ok=st.booleans(),
    signed=st.booleans(),
)
def test_random_bodies_never_crash_the_receiver(body: bytes, token_ok: bool, signed: bool) -> None:
    """Random bytes and random JSON, with or without a good token and signature: always a
    JSON answer with 200/400/401/413, never an exception; only a body naming a taskId that
    the signature covers can reach the job."""

    async def run() -> None:
        target = _Target()
        response = await target.post(
            body=body,
            token=None if token_ok else "bad",
            headers=None if signed else {"X-Webhook-Signature": "AAAA"},
        )
        assert response.status_code in (200, 400, 401, 413)
        assert response.json()["code"] == response.status_code
        if response.status_code != 200:
            assert target.unchanged()
        else:
            assert target.notified == [(JOB, TASK)]

    asyncio.run(run())
    _FUZZED[0] += 1


_FUZZED = [0]


def test_zz_record_fuzz_count(reliability: Any) -> None:
    """Records how many random bodies the fuzz test sent, for docs/reliability.md."""
    if not _FUZZED[0]:
        pytest.skip("the fuzz test did not run (deselected)")
    reliability.record(
        "webhook",
        "random bytes / random JSON bodies (hypothesis)",
        tried=_FUZZED[0],
        outcome="200 only for a signed body naming the task; else 400/401/413",
    )


# -- load: 1,000 callbacks through a real Router ----------------------------------------------

SEEDREAM = "bytedance/seedream-v4-text-to-image"
ONE = Policy(name="seedream-only", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,)))
JOBS = 200
CALLBACKS = 1000


def _plugins() -> list[Any]:
    import kierouter_seedream

    return [kierouter_seedream]


@pytest.fixture
async def router_and_emu() -> AsyncIterator[tuple[Router, Emulator]]:
    async with Emulator(
        time_scale=200.0, hmac_key=HMAC_KEY, create_limit=1000, create_window=1.0, seed=7
    ) as emu:
        client = KieClient(
            emu.api_key, base_url=emu.base_url, create_limit=1000, create_window=1.0, read_rate=1000
        )
        router = Router(
            _plugins(),
            client=client,
            latency_scale=1 / 200.0,
            allow_private_downloads=True,
            webhook=WebhookConfig(listen="127.0.0.1:0", hmac_key=HMAC_KEY),
            poll=PollConfig(webhook_fallback=1000, deadline_factor=1000),
        )
        try:
            yield router, emu
        finally:
            await router.aclose()
            await client.aclose()


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_a_thousand_callbacks_complete_each_job_exactly_once(
    router_and_emu: tuple[Router, Emulator], reliability: Any
) -> None:
    """200 jobs wait for callbacks; the emulator sends theirs (30% duplicated) and we replay
    signed copies until 1,000 callbacks arrived, some before, some after each job finished:
    every job completes exactly once, with one create and one confirming status read each."""
    router, emu = router_and_emu
    emu.configure("seedream", latency=(1000, 1000))  # pending until the clock is advanced
    emu.inject("duplicate_callback", rate=0.3)
    await router.start()
    jobs = [
        asyncio.create_task(router.generate(f"fox {i}", policy=ONE, job_key=f"load-{i}"))
        for i in range(JOBS)
    ]
    await _until(lambda: emu.stats()["created_total"] == JOBS)
    emu.advance(1000)
    await _until(lambda: emu.stats()["callbacks_sent"] >= JOBS)
    log = list(emu.callbacks)
    rng = random.Random(3)
    sent_by_emu = len(log)
    extra = CALLBACKS - sent_by_emu
    assert extra > 0

    async def replay(http: httpx.AsyncClient, entry: dict[str, Any]) -> int:
        ts = str(int(time.time()))
        headers = {
            "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": sign(HMAC_KEY, entry["taskId"], ts),
        }
        response = await http.post(entry["url"], json=entry["body"], headers=headers)
        return response.status_code

    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        half = extra // 2
        first = await asyncio.gather(*(replay(http, rng.choice(log)) for _ in range(half)))
        results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
        second = await asyncio.gather(*(replay(http, rng.choice(log)) for _ in range(extra - half)))
    await _until(lambda: emu.stats()["callbacks_sent"] >= len(emu.callbacks))
    total = len(emu.callbacks) + len(first) + len(second)
    stats = emu.stats()
    receiver = router.webhook_app.stats
    assert set(first) | set(second) == {200}
    assert total >= CALLBACKS
    assert sorted(r.job_key for r in results) == sorted(f"load-{i}" for i in range(JOBS))
    assert all(len(r.attempts) == 1 and r.served_model == SEEDREAM for r in results)
    assert stats["created_total"] == JOBS
    assert stats["status_reads"] == JOBS  # one confirming read per job, none for duplicates
    assert receiver["accepted"] == JOBS
    assert receiver["accepted"] + receiver["duplicate"] == total
    assert len({r.task_ids[0] for r in results}) == JOBS
    reliability.record(
        "webhook",
        f"load: {JOBS} jobs, emulator + replayed duplicate callbacks",
        tried=total,
        outcome=f"{JOBS} jobs completed once each; {receiver['duplicate']} duplicates acked; "
        f"{stats['status_reads']} status reads",
        lost=JOBS - len(results),
    )
