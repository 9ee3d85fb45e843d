"""Status reads that fail are not task failures: only KIE's own final state ends a task. And the
client-side answers that are not KIE speaking: Cloudflare's 1010 block, a key with a newline."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import kierouter as kr
from kierouter import Router
from kierouter._images import encode_png
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SCALE = 500.0
NANO = "google/nano-banana"
#: a model of each KIE family, first rung of a two-rung ladder (a second task would show)
FAMILIES = {
    "bytedance/seedream-v4-text-to-image": "seedream",
    "flux-kontext-pro": "flux-kontext",
    "gpt4o-image": "gpt4o-image",
    "midjourney": "midjourney",
}
PNG = encode_png(4, 2, bytes(range(24)))


def _plugins() -> list[Any]:
    import kierouter_flux_kontext
    import kierouter_gpt4o_image
    import kierouter_midjourney
    import kierouter_nano_banana
    import kierouter_seedream

    return [
        kierouter_seedream, kierouter_nano_banana, kierouter_flux_kontext,
        kierouter_gpt4o_image, kierouter_midjourney,
    ]  # fmt: skip


def _first(model: str) -> Policy:
    return Policy(
        name="first-then-nano",
        ladder=(FAMILIES[model], "nano-banana"),
        constraints=Constraints(allow=(model, NANO)),
    )


@pytest.fixture
async def slow_to_show() -> AsyncIterator[Emulator]:
    """Tasks finish in 5-8 s but cannot be read for their first 100 s (KIE's read lag)."""
    async with Emulator(
        time_scale=SCALE, create_limit=500, create_window=1.0, visibility_lag=100
    ) as emulator:
        emulator.configure("*", latency=(5, 8))
        yield emulator


def _router(emu: Emulator, **kw: Any) -> Router:
    client = kr.KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000)
    return Router(
        _plugins(), client=client, latency_scale=1 / SCALE, allow_private_downloads=True, **kw
    )


@pytest.mark.parametrize("model", sorted(FAMILIES))
async def test_a_task_not_visible_yet_is_read_again_for_every_family(
    slow_to_show: Emulator, model: str, tmp_path: Path, reliability: Any
) -> None:
    """For 100 s after the create every status read says the task does not exist (Market: 422
    "recordInfo is null"; 4o, Flux, MJ: data null): the job reads again until KIE shows it, and
    is served by that one task."""
    async with _router(slow_to_show, out_dir=tmp_path) as router:
        result = await router.generate("a red fox on a hill", policy=_first(model))
    stats = slow_to_show.stats()
    assert stats["created_total"] == 1
    assert result.served_model == model and result.delivery == "downloaded"
    assert stats["status_reads"] > 3  # the lag was seen, several times
    reliability.record(
        "faults",
        f"status reads lagging 100 s behind the create ({FAMILIES[model]})",
        tried=stats["status_reads"] - 1,
        outcome="read again until KIE showed the task; 1 task, served",
    )


@pytest.mark.parametrize("kind", ["http_500", "code_500", "malformed_body", "slow_response"])
async def test_failing_status_reads_keep_following_the_task(kind: str, tmp_path: Path) -> None:
    """Every status read of a stretch fails (5xx, a broken body, a read timeout): the job keeps
    following its task and is served by it; nothing is created again."""
    scale = 20.0 if kind == "slow_response" else SCALE  # real read timeouts within emulated time
    async with Emulator(time_scale=scale, create_limit=500, create_window=1.0) as emu:
        emu.configure("*", latency=(5, 8))
        emu.inject(kind, paths="status", count=6, seconds=1.0)
        client = kr.KieClient(
            emu.api_key, base_url=emu.base_url, read_rate=1000, read_timeout=0.3, read_attempts=1
        )
        router = Router(
            _plugins(), client=client, latency_scale=1 / scale, allow_private_downloads=True
        )
        async with router:
            result = await router.generate("a red fox", policy=_first("flux-kontext-pro"))
        assert emu.stats()["created_total"] == 1
        assert emu.stats()["faults"][kind] == 6
    assert result.served_model == "flux-kontext-pro"


def _midjourney_kie(reads_not_found: int) -> tuple[httpx.MockTransport, list[str]]:
    """KIE's MJ API whose record-info answers HTTP 404 "Task not found" a few times first."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/api/v1/mj/generate":
            return httpx.Response(
                200, json={"code": 200, "msg": "success", "data": {"taskId": "t1"}}
            )
        if request.url.path == "/api/v1/mj/record-info":
            if seen.count("/api/v1/mj/record-info") <= reads_not_found:
                return httpx.Response(404, json={"code": 404, "msg": "Task not found"})
            data = {"taskId": "t1", "successFlag": 1, "resultInfoJson": json.dumps(
                {"resultUrls": [{"resultUrl": "https://cdn.kie.test/t1/0.png"}]})}  # fmt: skip
            return httpx.Response(200, json={"code": 200, "msg": "success", "data": data})
        if request.url.host == "cdn.kie.test":
            return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})
        return httpx.Response(200, json={"code": 404, "msg": "Not Found"})

    return httpx.MockTransport(handler), seen


async def test_midjourney_task_not_found_on_record_info_is_read_again(tmp_path: Path) -> None:
    """Midjourney's record-info answering HTTP 404 "Task not found" (five times) is a task KIE
    does not show yet, not a removed API: the job reads on and is served by its one task."""
    transport, seen = _midjourney_kie(reads_not_found=5)
    client = kr.KieClient("sk-mj-test-0123456789", base_url="https://kie.test", transport=transport)
    policy = Policy(
        name="mj", ladder=("midjourney",), constraints=Constraints(allow=("midjourney",))
    )
    router = Router(_plugins(), client=client, latency_scale=1 / SCALE, out_dir=tmp_path)
    async with router:
        result = await router.generate("a red fox", policy=policy)
    await client.aclose()
    assert result.task_id == "t1" and result.delivery == "downloaded"
    assert seen.count("/api/v1/mj/generate") == 1
    assert seen.count("/api/v1/mj/record-info") == 6


def test_midjourney_map_error_keeps_a_missing_task_a_missing_task() -> None:
    """The MJ plugin turns a 404 about its endpoint into EndpointGoneError, but not a 404
    saying the task is not found."""
    import kierouter_midjourney

    provider = kierouter_midjourney.MidjourneyProvider()
    missing = kr.NotFoundError("Task not found", code=404, http_status=404)
    assert type(provider.map_error(missing)) is kr.NotFoundError
    gone = kr.NotFoundError("Not Found", code=404, http_status=404)
    assert isinstance(provider.map_error(gone), kr.EndpointGoneError)


def _cloudflare(request: httpx.Request) -> httpx.Response:
    return httpx.Response(403, text="error code: 1010", headers={"Content-Type": "text/plain"})


async def test_cloudflare_1010_is_a_blocked_client(tmp_path: Path) -> None:
    """Cloudflare's HTTP 403 "error code: 1010" on a create is BlockedClientError: not an auth
    or validation error, sent once (not retried), and it says what to do."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return _cloudflare(request)

    client = kr.KieClient(
        "sk-cf-test-0123456789", base_url="https://kie.test", transport=httpx.MockTransport(handler)
    )
    policy = Policy(name="one", ladder=("seedream", "nano-banana"))
    async with Router(_plugins(), client=client, latency_scale=1 / SCALE) as router:
        with pytest.raises(kr.BlockedClientError) as info:
            await router.generate("a red fox", policy=policy)
        reads = len(sent)
        with pytest.raises(kr.BlockedClientError):
            await client.credits()  # a read is not retried either
        assert len(sent) == reads + 1
    await client.aclose()
    error = info.value
    assert not isinstance(error, kr.AuthError | kr.KieValidationError)
    assert "User-Agent" in str(error) and "1010" in str(error)
    assert sent.count("/api/v1/jobs/createTask") == 1  # a blocked create is not retried


async def test_a_key_ending_in_a_newline_is_stripped_and_never_shown() -> None:
    """A key pasted with CR/LF is sent without them; a key with a control character inside is
    refused before any call, and the error never shows the key."""
    headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers["authorization"])
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": 12.5})

    transport = httpx.MockTransport(handler)
    async with kr.KieClient(
        "sk-live-abc123def\r\n", base_url="https://kie.test", transport=transport
    ) as c:
        assert await c.credits() == 12.5
    assert headers == ["Bearer sk-live-abc123def"]
    with pytest.raises(kr.ConfigurationError) as info:
        kr.KieClient("sk-live-abc\n123def", base_url="https://kie.test", transport=transport)
    assert "control characters" in str(info.value)
    assert "abc" not in str(info.value) and "123def" not in str(info.value)


async def test_a_missing_key_speaks_to_library_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key the library names api_key= / KIE_API_KEY and the emulator class, not the
    command line's --sim."""
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    async with kr.KieClient(base_url="https://kie.test") as client:
        with pytest.raises(kr.ConfigurationError) as info:
            await client.credits()
    message = str(info.value)
    assert "api_key=" in message and "KIE_API_KEY" in message
    assert "kierouter.sim.Emulator" in message and "--sim" not in message
