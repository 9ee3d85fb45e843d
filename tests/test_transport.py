"""KieClient: envelope checks, error mapping, retries that never pay twice, no leaked key."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

import kierouter as kr
from kierouter._transport import KieClient

KEY = "sk-test-0123456789abcdef"


def _client(handler: Any, **kw: Any) -> KieClient:
    return KieClient(KEY, base_url="https://kie.test", transport=httpx.MockTransport(handler), **kw)


@pytest.mark.parametrize(
    ("code", "msg", "error"),
    [
        (401, "You do not have access permissions", kr.AuthError),
        (402, "Insufficient Credits", kr.InsufficientCreditsError),
        (404, "Not found", kr.NotFoundError),
        (422, "Record does not exist", kr.NotFoundError),
        (422, "url is wrong", kr.KieValidationError),
        (400, "bad", kr.KieValidationError),
        (433, "key limit", kr.KeyLimitError),
        (451, "could not download", kr.KieValidationError),
        (455, "maintenance", kr.MaintenanceError),
        (500, "internal error", kr.ServerError),
        (501, "generation failed", kr.GenerationFailedError),
        (505, "disabled", kr.FeatureDisabledError),
        (550, "queue full", kr.ServerError),
    ],
)
async def test_http_200_with_error_code_maps_to_error_class(
    code: int, msg: str, error: type[Exception]
) -> None:
    """KIE's business errors arrive as HTTP 200 with the code in the body; each maps to a class."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": code, "msg": msg, "data": None})

    client = _client(handler, read_attempts=1)
    with pytest.raises(error) as info:
        await client.read("/api/v1/jobs/recordInfo", {"taskId": "t1"})
    assert info.type is error
    assert msg in str(info.value)
    await client.aclose()


async def test_real_http_status_without_envelope_is_mapped() -> None:
    """A bare HTTP 402 page (no JSON envelope) still maps to InsufficientCreditsError."""
    client = _client(lambda r: httpx.Response(402, text="<html>402</html>"), read_attempts=1)
    with pytest.raises(kr.InsufficientCreditsError):
        await client.credits()
    await client.aclose()


async def test_credit_balance_is_fractional() -> None:
    """The credit endpoint's bare number is read as a float (recorded: 5916.25)."""
    client = _client(
        lambda r: httpx.Response(200, json={"code": 200, "msg": "success", "data": 5916.25})
    )
    assert await client.credits() == 5916.25
    await client.aclose()


async def test_reads_retry_transient_errors_and_honour_retry_after() -> None:
    """A 429 with Retry-After on a read is waited out, then the read succeeds."""
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"Retry-After": "0.3"}, json={"code": 429, "msg": "slow down"}
            )
        if len(calls) == 2:
            return httpx.Response(200, json={"code": 500, "msg": "internal error"})
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": 1.0})

    client = _client(handler)
    assert await client.credits() == 1.0
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.29, "Retry-After was not honoured"
    await client.aclose()


async def test_retry_after_beyond_cap_is_raised() -> None:
    """A Retry-After longer than max_retry_after is not slept through; the error is raised."""
    client = _client(
        lambda r: httpx.Response(
            429, headers={"Retry-After": "3600"}, json={"code": 429, "msg": "x"}
        ),
        max_retry_after=5,
    )
    with pytest.raises(kr.RateLimitedError) as info:
        await client.credits()
    assert info.value.retry_after == 3600
    await client.aclose()


async def test_create_timeout_after_sending_is_ambiguous_and_not_resent() -> None:
    """A read timeout after a create was sent is ambiguous, with one POST only."""
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    client = _client(handler)
    with pytest.raises(kr.AmbiguousSubmissionError) as info:
        await client.create("/api/v1/jobs/createTask", {"model": "m/x", "input": {"prompt": "p"}})
    assert len(posts) == 1
    assert "not resubmitted" in str(info.value)
    await client.aclose()


async def test_create_malformed_answer_is_ambiguous() -> None:
    """A create whose answer is not an envelope may have been billed: ambiguous, not retried."""
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(200, text="{not json")

    client = _client(handler)
    with pytest.raises(kr.AmbiguousSubmissionError):
        await client.create("/api/v1/jobs/createTask", {"model": "m/x", "input": {}})
    assert len(posts) == 1
    await client.aclose()


async def test_create_retried_on_connect_error_and_429_only() -> None:
    """A create that never connected, then one KIE refused with 429, is retried and succeeds."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append("try")
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(seen) == 2:
            return httpx.Response(
                200, json={"code": 429, "msg": "rate limited"}, headers={"Retry-After": "0.05"}
            )
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": "abc"}})

    client = _client(handler)
    data = await client.create("/api/v1/jobs/createTask", {"model": "m/x", "input": {}})
    assert data == {"taskId": "abc"}
    assert len(seen) == 3
    await client.aclose()


async def test_create_not_retried_on_server_error() -> None:
    """A 500 answer to a create is raised, never resent (the task might exist)."""
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(200, json={"code": 500, "msg": "internal error"})

    client = _client(handler)
    with pytest.raises(kr.ServerError):
        await client.create("/api/v1/jobs/createTask", {"model": "m/x", "input": {}})
    assert len(posts) == 1
    await client.aclose()


async def test_wire_shape_of_create() -> None:
    """Creates carry a Bearer key, JSON body and explicit User-Agent; the key is per request."""
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": "t"}})

    client = _client(handler)
    body = {"model": "seedream/5-lite-text-to-image", "input": {"prompt": "p"}}
    await client.create("/api/v1/jobs/createTask", body)
    request = captured[0]
    assert request.url == "https://kie.test/api/v1/jobs/createTask"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("kierouter/")
    assert json.loads(request.content) == body
    assert "authorization" not in client.http.headers, "key must not be a default header"
    await client.aclose()


async def test_key_never_in_repr_or_error_text() -> None:
    """The API key appears in no repr and no raised error's text, even if KIE echoes it."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 401, "msg": f"bad key {KEY}"})

    client = _client(handler, read_attempts=1)
    assert KEY not in repr(client)
    with pytest.raises(kr.AuthError) as info:
        await client.credits()
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    await client.aclose()


async def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key, the first call raises ConfigurationError that says how to fix it."""
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    client = KieClient(
        base_url="https://kie.test", transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    with pytest.raises(kr.ConfigurationError, match="KIE_API_KEY"):
        await client.credits()
    await client.aclose()


async def test_cookies_a_response_sets_are_kept_and_sent_back() -> None:
    """The client's cookie jar skips responses that set no cookie (the usual KIE answer) but
    stores one that does, and sends it with the next request, as httpx's own jar would."""
    import httpx

    from kierouter._transport import KieClient

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        headers = {"set-cookie": "__cf_bm=abc; Path=/"} if len(seen) == 2 else {}
        return httpx.Response(200, json={"code": 200, "msg": "ok", "data": 1.0}, headers=headers)

    client = KieClient("k", base_url="https://api.kie.ai", transport=httpx.MockTransport(handler))
    async with client:
        for _ in range(3):
            assert await client.credits() == 1.0
        assert client.http.cookies.get("__cf_bm") == "abc"
    assert seen == [None, None, "__cf_bm=abc"]
