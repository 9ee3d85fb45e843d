"""GPT-4o image against the KIE emulator over real HTTP: generate (1, 2 and 4 variants), edit
with five references and a mask, the size really reaching the model, the callback KIE posts,
the 4o download-url endpoint, and failed tasks mapped to a failed status with KIE's code."""

from __future__ import annotations

import hashlib
from typing import Any

import kierouter_gpt4o_image
import pytest
from kierouter_gpt4o_image import GPT4O_IMAGE, Gpt4oImageProvider

from kierouter import ImageRequest, Router
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import CallbackRecorder, run_task

pytest_plugins = ["kierouter.testing"]

IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
PROVIDER = Gpt4oImageProvider()


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.parametrize("count", [1, 2, 4])
async def test_generate(kie_emulator: Emulator, kie_client: KieClient, count: int) -> None:
    """A text-to-image task succeeds with nVariants distinct emulator-served URLs."""
    request = ImageRequest(prompt="a poster that says GRAND OPENING", count=count)
    status = await run_task(kie_client, PROVIDER, GPT4O_IMAGE, request)
    assert status.state == "success" and len(set(status.urls)) == len(status.urls) == count
    assert all(url.startswith(kie_emulator.base_url) for url in status.urls)
    assert kie_emulator.stats()["created"] == {"gpt4o-image": 1}


async def test_size_reaches_the_model(kie_emulator: Emulator, kie_client: KieClient) -> None:
    """A 16:9 request is sent as size 3:2 and the downloaded image is landscape; 9:16 → portrait."""
    for ratio, landscape in (("16:9", True), ("9:16", False)):
        request = ImageRequest(prompt="a wide shop sign", aspect_ratio=ratio)
        status = await run_task(kie_client, PROVIDER, GPT4O_IMAGE, request)
        width, height = _png_size((await kie_client.http.get(status.urls[0])).content)
        assert (width > height) is landscape


async def test_edit_with_five_references_and_a_mask(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """An edit with the maximum of five reference images succeeds; a one-image masked edit too."""
    images = tuple(f"{IMG}?n={i}" for i in range(5))
    status = await run_task(
        kie_client, PROVIDER, GPT4O_IMAGE, ImageRequest(prompt="merge them", images=images)
    )
    assert status.state == "success" and len(status.urls) == 1
    masked = ImageRequest(prompt="paint the sky red", images=(IMG,), mask=f"{IMG}?mask")
    status = await run_task(kie_client, PROVIDER, GPT4O_IMAGE, masked)
    assert status.state == "success"
    sent = kie_emulator.state.tasks[status.task_id].body
    assert (sent["filesUrl"], sent["maskUrl"]) == ([IMG], f"{IMG}?mask")


@pytest.mark.parametrize(
    ("code", "message"), [("400", "prompt flagged"), ("451", "download failed")]
)
async def test_failure_maps_to_failed_status(
    kie_emulator: Emulator, kie_client: KieClient, code: str, message: str
) -> None:
    """A task KIE fails comes back failed with its errorCode and errorMessage and no URLs."""
    kie_emulator.configure("gpt4o-image", fail_rate=1.0, fail_code=code, fail_msg=message)
    status = await run_task(kie_client, PROVIDER, GPT4O_IMAGE, ImageRequest(prompt="x"))
    assert (status.state, status.raw_state) == ("failed", "GENERATE_FAILED")
    assert (status.fail_code, status.fail_message, status.urls) == (code, message, ())


async def test_download_url_remints_a_result_link(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """The 4o download-url endpoint, called with the provider's path and body, mints a working
    link to the same image."""
    status = await run_task(kie_client, PROVIDER, GPT4O_IMAGE, ImageRequest(prompt="a label"))
    url = status.urls[0]
    fresh = await kie_client.download_url(
        url,
        path=PROVIDER.download_url_path,
        body=PROVIDER.download_url_body(status.task_id, url),
    )
    assert fresh != url
    original = (await kie_client.http.get(url)).content
    assert (await kie_client.http.get(fresh)).content == original


async def test_callbacks_parse_like_record_info(
    kie_emulator: Emulator,
    kie_client: KieClient,
    kie_callbacks: CallbackRecorder,
) -> None:
    """The callbacks KIE posts (data.info.result_urls; info null on failure) parse to the same
    task, state and URLs as record-info."""
    url = kie_callbacks.url + "/kie/callback"
    done = await run_task(
        kie_client, PROVIDER, GPT4O_IMAGE, ImageRequest(prompt="ok", count=2), callback_url=url
    )
    kie_emulator.configure("gpt4o-image", fail_rate=1.0, fail_code="500", fail_msg="boom")
    failed = await run_task(
        kie_client, PROVIDER, GPT4O_IMAGE, ImageRequest(prompt="no"), callback_url=url
    )
    await kie_emulator.wait_callbacks(2)
    by_task = {
        PROVIDER.parse_callback(body).task_id: PROVIDER.parse_callback(body)
        for body in kie_callbacks.bodies
    }
    assert (by_task[done.task_id].state, by_task[done.task_id].urls) == ("success", done.urls)
    assert (by_task[failed.task_id].state, by_task[failed.task_id].fail_code) == ("failed", "500")


async def test_router_serves_a_text_job(kie_emulator: Emulator, tmp_path: Any) -> None:
    """Through the router: the job is served by gpt4o-image, the 16:9 snap is on the attempt,
    and the image is downloaded."""
    async with Router(
        [kierouter_gpt4o_image],
        api_key=kie_emulator.api_key,
        base_url=kie_emulator.base_url,
        allow_private_downloads=True,
        latency_scale=1 / 1000,
        out_dir=str(tmp_path),
    ) as router:
        result = await router.generate(
            ImageRequest(prompt="a poster that says SALE", aspect_ratio="16:9")
        )
    assert result.served_model == "gpt4o-image" and len(result.files) == 1
    (attempt,) = result.attempts
    assert [(a.field, a.requested, a.sent) for a in attempt.adaptations] == [
        ("aspect_ratio", "16:9", "3:2")
    ]
    assert result.credits == kie_emulator.stats()["credits_charged"] == 10


async def test_router_remints_an_expired_link_at_the_4o_endpoint(
    kie_emulator: Emulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result downloaded after its link expired is re-minted through
    /api/v1/gpt4o-image/download-url (the common endpoint is taken away to prove it)."""
    from kierouter.sim import _app as sim_app

    monkeypatch.delitem(sim_app.ROUTES, ("POST", "/api/v1/common/download-url"))
    options: dict[str, Any] = {
        "api_key": kie_emulator.api_key,
        "base_url": kie_emulator.base_url,
        "allow_private_downloads": True,
        "latency_scale": 1 / 1000,
    }
    async with Router([kierouter_gpt4o_image], **options) as router:
        result = await router.generate(ImageRequest(prompt="a label that says JAM"))
        original = (await router.client.http.get(result.urls[0])).content
        kie_emulator.advance(48 * 3600)  # the result link expires
        assert (await router.client.http.get(result.urls[0])).status_code != 200
    assert result.files == ()  # no out_dir: URLs only
    async with Router([kierouter_gpt4o_image], **options) as later:
        files = await later.task(result.task_ids[0], model="gpt4o-image").download(tmp_path)
        assert later._downloader.stats["reminted"] == 1
    assert len(files) == 1
    assert files[0].sha256 == hashlib.sha256(original).hexdigest()
