"""Completion callbacks: each family's body, HMAC headers, preserved query strings, retries,
lost and duplicated callbacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator
from kierouter.testing import CallbackRecorder

HMAC_KEY = "whk-test-0123456789"


def verify_kie_webhook(key: str, headers: dict, body: dict, max_skew_s: int = 300) -> bool:  # type: ignore[type-arg]
    """The reference verifier from KIE-API.md §3.9, verbatim."""
    h = {k.lower(): v for k, v in headers.items()}
    ts, sig = h.get("x-webhook-timestamp"), h.get("x-webhook-signature")
    data = body.get("data") or {}
    task_id = body.get("taskId") or data.get("taskId") or data.get("task_id")
    if not (ts and sig and task_id) or abs(time.time() - int(ts)) > max_skew_s:
        return False
    mac = hmac.new(key.encode(), f"{task_id}.{ts}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(mac).decode(), sig)


@pytest.fixture
def receiver(kie_callbacks: CallbackRecorder) -> CallbackRecorder:
    """A running callback recorder (``kierouter.testing``)."""
    return kie_callbacks


def client(emu: Emulator) -> httpx.AsyncClient:
    """An httpx client with the emulator's key."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    return httpx.AsyncClient(base_url=emu.base_url, headers=headers)


async def test_market_callback_is_signed_and_keeps_its_query(receiver: CallbackRecorder) -> None:
    """A Market callback mirrors recordInfo, verifies with KIE's HMAC and keeps the exact query."""
    query = "job=job-42&token=a%2Fb+c~d&empty="
    async with Emulator(time_scale=1000, hmac_key=HMAC_KEY) as emu, client(emu) as http:
        body = {
            "model": "bytedance/seedream-v4-text-to-image",
            "callBackUrl": f"{receiver.url}/kie/callback?{query}",
            "input": {"prompt": "a lighthouse", "image_size": "landscape_16_9", "seed": 7},
        }
        task_id = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
        (call,) = await receiver.wait(1)
        record = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
        tasks = emu.tasks()
    assert call["path"] == "/kie/callback" and call["query"] == query
    assert verify_kie_webhook(HMAC_KEY, call["headers"], call["body"])
    assert not verify_kie_webhook("another-key-xyz", call["headers"], call["body"])
    assert call["body"]["code"] == 200
    data = call["body"]["data"]
    assert data["taskId"] == task_id and data["state"] == "success"
    assert data["creditsConsumed"] == 3.5
    assert data == record.json()["data"]  # recordInfo carries creditsConsumed too
    assert tasks[0]["job_key"] == "job-42"


async def test_no_signature_headers_without_an_hmac_key(receiver: CallbackRecorder) -> None:
    """Without an HMAC key, callbacks carry no signature headers."""
    async with Emulator(time_scale=1000) as emu, client(emu) as http:
        body = {"model": "google/nano-banana", "callBackUrl": receiver.url + "/cb",
                "input": {"prompt": "x"}}  # fmt: skip
        await http.post("/api/v1/jobs/createTask", json=body)
        (call,) = await receiver.wait(1)
    assert "x-webhook-signature" not in call["headers"]


async def test_failed_market_task_calls_back_with_code_501(receiver: CallbackRecorder) -> None:
    """A failed Market task's callback has code 501, state fail and a string failCode."""
    async with Emulator(time_scale=1000, hmac_key=HMAC_KEY) as emu, client(emu) as http:
        emu.configure("qwen", fail_rate=1.0, fail_code="422", fail_msg="prompt rejected")
        body = {"model": "qwen/text-to-image", "callBackUrl": receiver.url + "/cb",
                "input": {"prompt": "x"}}  # fmt: skip
        await http.post("/api/v1/jobs/createTask", json=body)
        (call,) = await receiver.wait(1)
    assert call["body"]["code"] == 501
    assert call["body"]["data"]["state"] == "fail"
    assert call["body"]["data"]["failCode"] == "422"
    assert call["body"]["data"]["failMsg"] == "prompt rejected"
    assert call["body"]["data"]["creditsConsumed"] == 0


@pytest.mark.parametrize(
    ("path", "body", "check"),
    [
        (
            "/api/v1/gpt4o-image/generate",
            {"prompt": "a sign that says OPEN", "size": "1:1", "nVariants": 2},
            lambda d: len(d["info"]["result_urls"]) == 2,
        ),
        (
            "/api/v1/flux/kontext/generate",
            {"prompt": "a cat", "model": "flux-kontext-max"},
            lambda d: d["info"]["resultImageUrl"].endswith(".png") and d["info"]["originImageUrl"],
        ),
        (
            "/api/v1/mj/generate",
            {"taskType": "mj_txt2img", "prompt": "a castle", "speed": "fast"},
            lambda d: (
                len(d["resultUrls"]) == 4 and all(isinstance(u, str) for u in d["resultUrls"])
            ),
        ),
    ],
)
async def test_legacy_callbacks_have_their_family_shape(
    receiver: CallbackRecorder, path: str, body: dict[str, Any], check: Any
) -> None:
    """4o (data.info.result_urls), Flux (data.info.resultImageUrl), MJ (flat data.resultUrls)."""
    async with Emulator(time_scale=1000, hmac_key=HMAC_KEY) as emu, client(emu) as http:
        answer = await http.post(path, json={**body, "callBackUrl": receiver.url + "/cb?job=j1"})
        task_id = answer.json()["data"]["taskId"]
        (call,) = await receiver.wait(1)
    assert call["body"]["code"] == 200
    assert call["body"]["data"]["taskId"] == task_id
    assert check(call["body"]["data"])
    assert verify_kie_webhook(HMAC_KEY, call["headers"], call["body"])


async def test_callback_is_retried_after_a_failure(receiver: CallbackRecorder) -> None:
    """A receiver that answers 500 once gets the callback again (1 emulated minute later)."""
    receiver.fail_first = 1
    async with Emulator(time_scale=1000) as emu, client(emu) as http:
        body = {"model": "google/nano-banana", "callBackUrl": receiver.url + "/cb",
                "input": {"prompt": "x"}}  # fmt: skip
        await http.post("/api/v1/jobs/createTask", json=body)
        calls = await receiver.wait(2)
        await emu.wait_callbacks(1)  # the emulator counts a delivery once it has the answer
        stats = emu.stats()
    assert len(calls) == 2 and calls[0]["body"] == calls[1]["body"]
    assert stats["callbacks_sent"] == 1 and stats["callback_attempts"] == 2


async def test_callback_gives_up_after_three_retries(receiver: CallbackRecorder) -> None:
    """A receiver that always fails gets 4 attempts (now, +1, +5, +15 min), then none."""
    receiver.fail_first = 100
    async with Emulator(time_scale=1e-6) as emu, client(emu) as http:
        body = {"model": "google/nano-banana", "callBackUrl": receiver.url + "/cb",
                "input": {"prompt": "x"}}  # fmt: skip
        await http.post("/api/v1/jobs/createTask", json=body)
        emu.advance(1000)
        await receiver.wait(1)
        for step, seen in ((60, 2), (240, 3), (600, 4)):  # 1, 5 and 15 minutes after the first
            await asyncio.sleep(0.02)
            assert len(receiver.calls) == seen - 1
            emu.advance(step)
            await receiver.wait(seen)
        await asyncio.sleep(0.05)
        stats = emu.stats()
    assert len(receiver.calls) == 4
    assert stats["callbacks_failed"] == 1 and stats["callbacks_sent"] == 0


async def test_lost_callback_is_never_sent(receiver: CallbackRecorder) -> None:
    """lost_callback: the task succeeds but no callback arrives."""
    async with Emulator(time_scale=1000) as emu, client(emu) as http:
        emu.inject("lost_callback", count=1)
        body = {"model": "google/nano-banana", "callBackUrl": receiver.url + "/cb",
                "input": {"prompt": "x"}}  # fmt: skip
        first = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
        await asyncio.sleep(0.1)
        second = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
        calls = await receiver.wait(1)
        await asyncio.sleep(0.1)
        stats = emu.stats()
    assert [c["body"]["data"]["taskId"] for c in calls] == [second]
    assert first != second
    assert stats["callbacks_lost"] == 1 and stats["succeeded"] == 2


async def test_duplicate_callback_arrives_twice(receiver: CallbackRecorder) -> None:
    """duplicate_callback: the same callback is delivered twice."""
    async with Emulator(time_scale=1000) as emu, client(emu) as http:
        emu.inject("duplicate_callback")
        body = {"model": "google/nano-banana", "callBackUrl": receiver.url + "/cb",
                "input": {"prompt": "x"}}  # fmt: skip
        await http.post("/api/v1/jobs/createTask", json=body)
        calls = await receiver.wait(2)
    assert len(calls) == 2 and calls[0]["body"] == calls[1]["body"]
