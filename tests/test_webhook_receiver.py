"""The ASGI callback receiver: tokens, KIE's HMAC headers, duplicates and refusals."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from kierouter.webhooks import WebhookReceiver, callback_task_id, sign

HMAC_KEY = "whsec-test-hmac-key-0123456789"
BODY = {
    "code": 200,
    "msg": "Playground task completed successfully.",
    "data": {
        "taskId": "task-1",
        "state": "success",
        "resultJson": '{"resultUrls":["https://tempfile.aiquickdraw.com/r/x.png"]}',
    },
}


def _client(receiver: WebhookReceiver) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver), base_url="https://hooks.test"
    )


def _signed(
    task_id: str = "task-1", *, at: float | None = None, key: str = HMAC_KEY
) -> dict[str, str]:
    ts = str(int(time.time() if at is None else at))
    return {"X-Webhook-Timestamp": ts, "X-Webhook-Signature": sign(key, task_id, ts)}


async def _post(
    receiver: WebhookReceiver,
    job_key: str = "job-1",
    *,
    body: Any = BODY,
    headers: dict[str, str] | None = None,
    token: str | None = None,
    prefix: str = "/kie/callback/",
) -> httpx.Response:
    url = f"{prefix}{job_key}?token={receiver.token_for(job_key) if token is None else token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with _client(receiver) as client:
        return await client.post(
            url, content=content, headers={"Content-Type": "application/json", **(headers or {})}
        )


async def test_signed_callback_is_accepted_and_wakes_the_job() -> None:
    """A signed callback with the job's token is answered 200 and queued as a hint."""
    receiver = WebhookReceiver(hmac_key=HMAC_KEY)
    waiter = receiver.expect("job-1")
    response = await _post(receiver, headers=_signed())
    assert response.status_code == 200
    assert response.json() == {"code": 200, "msg": "success"}
    assert await waiter.wait(0.1)
    assert [h.task_id for h in waiter.take()] == ["task-1"]


# Headers are built when the test runs, not at collection: a timestamp taken at collection is
# minutes old by the time a long suite reaches this test, and "400 s ahead" would drift into the
# accepted window.
BAD_SIGNATURES: dict[str, Any] = {
    "unsigned": dict,
    "forged": lambda: _signed(key="a-different-hmac-key-xyz"),
    "stale": lambda: _signed(at=time.time() - 400),
    "from the future": lambda: _signed(at=time.time() + 400),
    "bad timestamp": lambda: {"X-Webhook-Timestamp": "soon", "X-Webhook-Signature": "AAAA"},
}


@pytest.mark.parametrize("why", list(BAD_SIGNATURES))
async def test_bad_signatures_are_refused_without_state_change(why: str) -> None:
    """Unsigned, forged and stale callbacks get 401 and queue nothing."""
    receiver = WebhookReceiver(hmac_key=HMAC_KEY)
    waiter = receiver.expect("job-1")
    response = await _post(receiver, headers=BAD_SIGNATURES[why]())
    assert response.status_code == 401, why
    assert not await waiter.wait(0.01)


async def test_signature_of_another_task_is_refused() -> None:
    """A valid signature for task A does not authenticate a body naming task B."""
    receiver = WebhookReceiver(hmac_key=HMAC_KEY)
    waiter = receiver.expect("job-1")
    response = await _post(receiver, headers=_signed("task-other"))
    assert response.status_code == 401
    assert not await waiter.wait(0.01)


async def test_duplicates_are_acknowledged_and_ignored() -> None:
    """The same task's callback twice is answered 200 both times but queued once."""
    receiver = WebhookReceiver(hmac_key=HMAC_KEY)
    waiter = receiver.expect("job-1")
    first = await _post(receiver, headers=_signed())
    second = await _post(receiver, headers=_signed())
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(waiter.take()) == 1
    assert receiver.stats["duplicate"] == 1


async def test_late_callback_after_the_job_finished_changes_nothing() -> None:
    """Once a job is forgotten, its late callbacks get 200 (KIE stops retrying) and no hint."""
    receiver = WebhookReceiver()
    waiter = receiver.expect("job-1")
    receiver.forget("job-1")
    response = await _post(receiver)
    assert response.status_code == 200
    assert not await waiter.wait(0.01)
    assert receiver.waiting() == []


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"job_key": "job-unknown"}, 404),
        ({"token": "not-the-token"}, 401),
        ({"token": ""}, 401),
        ({"prefix": "/kie/other/"}, 404),
        ({"body": b"{not json"}, 400),
        ({"body": {"code": 200, "data": {}}}, 400),
    ],
)
async def test_refusals(kwargs: dict[str, Any], status: int) -> None:
    """Unknown jobs, wrong tokens, other paths and bodies without a task id are refused."""
    receiver = WebhookReceiver()
    waiter = receiver.expect("job-1")
    response = await _post(receiver, **kwargs)
    assert response.status_code == status
    assert not await waiter.wait(0.01)


async def test_oversized_body_is_refused() -> None:
    """A body over max_body gets 413."""
    receiver = WebhookReceiver(max_body=1024)
    waiter = receiver.expect("job-1")
    big = {**BODY, "padding": "x" * 5000}
    response = await _post(receiver, body=big)
    assert response.status_code == 413
    assert not await waiter.wait(0.01)


async def test_wrong_content_type_and_method_are_refused() -> None:
    """Form posts get 415 and GETs get 405."""
    receiver = WebhookReceiver()
    receiver.expect("job-1")
    url = f"/kie/callback/job-1?token={receiver.token_for('job-1')}"
    async with _client(receiver) as client:
        form = await client.post(url, data={"taskId": "task-1"})
        get = await client.get(url)
    assert form.status_code == 415
    assert get.status_code == 405


async def test_mounted_under_any_prefix() -> None:
    """The receiver matches ``.../callback/{job}`` whatever prefix it is mounted under."""
    receiver = WebhookReceiver()
    waiter = receiver.expect("job-1")
    response = await _post(receiver, prefix="/hooks/kie/callback/")
    assert response.status_code == 200
    assert await waiter.wait(0.1)


def test_tokens_differ_per_job_and_are_shared_by_secret() -> None:
    """Tokens are per job, and two receivers with one secret agree (e.g. across restarts)."""
    a = WebhookReceiver(token_secret="shared-token-secret-1")
    b = WebhookReceiver(token_secret="shared-token-secret-1")
    c = WebhookReceiver()
    assert a.token_for("job-1") != a.token_for("job-2")
    assert a.token_for("job-1") == b.token_for("job-1")
    assert a.token_for("job-1") != c.token_for("job-1")
    url = a.callback_url("https://example.com/", "job 1/x")
    assert url.startswith("https://example.com/kie/callback/job%201%2Fx?token=")


def test_repr_hides_the_hmac_key() -> None:
    """Neither the HMAC key nor the token secret shows in the receiver's repr."""
    receiver = WebhookReceiver(hmac_key=HMAC_KEY, token_secret="shared-token-secret-1")
    text = repr(receiver)
    assert HMAC_KEY not in text
    assert "shared-token-secret-1" not in text


def test_task_id_lookup_follows_kie_shapes() -> None:
    """taskId is found top-level, in data.taskId or in data.task_id."""
    assert callback_task_id({"taskId": "a", "data": {"taskId": "b"}}) == "a"
    assert callback_task_id({"data": {"taskId": "b"}}) == "b"
    assert callback_task_id({"data": {"task_id": "c"}}) == "c"
    assert callback_task_id({"data": None}) is None
    assert callback_task_id([1, 2]) is None


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"max_body": 0}, "max_body"), ({"read_timeout": -1}, "read_timeout")]
)
def test_bad_limits_are_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A limit that would refuse every callback is a configuration error naming the field."""
    from kierouter import ConfigurationError

    with pytest.raises(ConfigurationError, match=field):
        WebhookReceiver(**kwargs)


async def test_a_stalled_body_is_answered_408_wherever_the_receiver_runs() -> None:
    """The receiver times the body itself (so its limit holds in any ASGI server): a body that
    stops arriving is answered 408 with the connection closed, and reaches no job."""
    receiver = WebhookReceiver(read_timeout=0.05)
    waiter = receiver.expect("job-1")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": b'{"data":', "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/kie/callback/job-1",
        "query_string": f"token={receiver.token_for('job-1')}".encode(),
        "headers": [(b"content-type", b"application/json")],
    }
    await asyncio.wait_for(receiver(scope, receive, send), 5)
    start = sent[1]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert not await waiter.wait(0.01)
