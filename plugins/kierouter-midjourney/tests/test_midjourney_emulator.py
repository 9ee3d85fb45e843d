"""Midjourney against the KIE emulator over real HTTP: a generate returns MJ's 4 images, image
prompts and niji6 are accepted, the price follows the speed, callbacks are flat strings, failed
tasks map to a failed status, and an MJ endpoint that is gone becomes EndpointGoneError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kierouter_gpt4o_image
import kierouter_midjourney
import pytest
from kierouter_midjourney import MIDJOURNEY, MidjourneyProvider

from kierouter import (
    EndpointGoneError,
    ImageRequest,
    JobFailedError,
    NotFoundError,
    Policy,
    Router,
)
from kierouter._transport import KieClient
from kierouter.policy import Constraints
from kierouter.sim import Emulator
from kierouter.sim import _app as sim_app
from kierouter.testing import CallbackRecorder, run_task

pytest_plugins = ["kierouter.testing"]

IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
PROVIDER = MidjourneyProvider()


def _mj(**options: Any) -> dict[str, dict[str, Any]]:
    return {"midjourney": options}


async def test_generate_returns_four_images(kie_emulator: Emulator, kie_client: KieClient) -> None:
    """A text-to-image task succeeds with MJ's four distinct emulator-served images."""
    request = ImageRequest(prompt="a dragon over a misty lake, ink wash", aspect_ratio="16:9")
    status = await run_task(kie_client, PROVIDER, MIDJOURNEY, request)
    assert status.state == "success" and len(set(status.urls)) == 4
    assert all(url.startswith(kie_emulator.base_url) for url in status.urls)
    png = (await kie_client.http.get(status.urls[0])).content
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and width > height
    assert kie_emulator.stats()["created"] == {"midjourney": 1}


@pytest.mark.parametrize("task_type", ["mj_img2img", "mj_style_reference", "mj_omni_reference"])
async def test_image_prompts(kie_emulator: Emulator, kie_client: KieClient, task_type: str) -> None:
    """Edits with reference images succeed under each image task type, niji6 included."""
    options: dict[str, Any] = {"taskType": task_type, "version": "niji6"}
    if task_type == "mj_omni_reference":
        options["ow"] = 250
    images = tuple(f"{IMG}?n={i}" for i in range(5))
    request = ImageRequest(
        prompt="the same girl, anime key visual", images=images, options=_mj(**options)
    )
    status = await run_task(kie_client, PROVIDER, MIDJOURNEY, request)
    assert status.state == "success" and len(status.urls) == 4
    sent = kie_emulator.state.tasks[status.task_id].body
    assert (sent["taskType"], sent["version"], len(sent["fileUrls"])) == (task_type, "niji6", 5)


@pytest.mark.parametrize(("speed", "credits"), [("relaxed", 12.5), ("fast", 25), ("turbo", 50)])
async def test_price_follows_speed(
    kie_emulator: Emulator, kie_client: KieClient, speed: str, credits: float
) -> None:
    """The credits KIE charges for a task match the card's price for the speed sent."""
    request = ImageRequest(prompt="a red fox", count=4, options=_mj(speed=speed))
    await run_task(kie_client, PROVIDER, MIDJOURNEY, request)
    assert kie_emulator.stats()["credits_charged"] == MIDJOURNEY.credits_for(request) == credits


async def test_failure_maps_to_failed_status(kie_emulator: Emulator, kie_client: KieClient) -> None:
    """A task KIE fails comes back failed (successFlag 3) with its errorCode and message."""
    kie_emulator.configure("midjourney", fail_rate=1.0, fail_code="500", fail_msg="mj queue error")
    status = await run_task(kie_client, PROVIDER, MIDJOURNEY, ImageRequest(prompt="x"))
    assert (status.state, status.raw_state) == ("failed", "generation failed")
    assert (status.fail_code, status.fail_message, status.urls) == ("500", "mj queue error", ())


async def test_callbacks_parse_like_record_info(
    kie_emulator: Emulator,
    kie_client: KieClient,
    kie_callbacks: CallbackRecorder,
) -> None:
    """The callbacks KIE posts (flat resultUrls; code 500 on failure) parse to the same task,
    state and URLs as record-info's result objects."""
    url = kie_callbacks.url + "/kie/callback"
    done = await run_task(
        kie_client, PROVIDER, MIDJOURNEY, ImageRequest(prompt="ok"), callback_url=url
    )
    kie_emulator.configure("midjourney", fail_rate=1.0)
    failed = await run_task(
        kie_client, PROVIDER, MIDJOURNEY, ImageRequest(prompt="no"), callback_url=url
    )
    await kie_emulator.wait_callbacks(2)
    assert all(isinstance(u, str) for b in kie_callbacks.bodies for u in b["data"]["resultUrls"])
    parsed = {s.task_id: s for s in map(PROVIDER.parse_callback, kie_callbacks.bodies)}
    assert (parsed[done.task_id].state, parsed[done.task_id].urls) == ("success", done.urls)
    assert (parsed[failed.task_id].state, parsed[failed.task_id].fail_code) == ("failed", "500")


@pytest.fixture
def mj_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator without KIE's MJ routes: it answers them as unknown paths (code 404)."""
    monkeypatch.delitem(sim_app.ROUTES, ("POST", "/api/v1/mj/generate"))
    monkeypatch.delitem(sim_app.ROUTES, ("GET", "/api/v1/mj/record-info"))


async def test_endpoint_gone_on_create(
    mj_gone: None, kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """KIE answering the MJ create with 404 is NotFoundError on the wire; the provider maps it
    to EndpointGoneError whose message says KIE removed Midjourney."""
    prepared = PROVIDER.prepare(MIDJOURNEY, ImageRequest(prompt="a red fox"))
    with pytest.raises(NotFoundError) as caught:
        await kie_client.create(prepared.path, prepared.body)
    mapped = PROVIDER.map_error(caught.value)
    assert isinstance(mapped, EndpointGoneError) and mapped.code == 404
    assert "removed its Midjourney pages" in str(mapped)


async def test_router_reports_gone_and_moves_on(
    mj_gone: None, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """Through the router: the MJ attempt ends with the gone message, the next model serves the
    job; with MJ alone the job fails with that message in its attempts."""
    both = Policy(
        name="mj-then-4o",
        ladder=("midjourney", "gpt4o-image"),
        constraints=Constraints(allow=("midjourney", "gpt4o-image")),
    )
    async with Router(
        [kierouter_midjourney, kierouter_gpt4o_image],
        api_key=kie_emulator.api_key,
        base_url=kie_emulator.base_url,
        latency_scale=1 / 1000,
    ) as router:
        result = await router.generate(ImageRequest(prompt="a castle", count=1), policy=both)
        first = result.attempts[0]
        assert (first.model, first.outcome) == ("midjourney", "error")
        assert "endpoint is gone" in first.reason
        assert result.served_model == "gpt4o-image"
        alone = Policy(
            name="mj", ladder=("midjourney",), constraints=Constraints(allow=("midjourney",))
        )
        with pytest.raises(JobFailedError) as caught:
            await router.generate(ImageRequest(prompt="a castle"), policy=alone)
    (alone_attempt,) = caught.value.attempts
    assert alone_attempt.outcome == "error" and "endpoint is gone" in alone_attempt.reason
    assert "endpoint is gone" in str(caught.value)
    assert kie_emulator.stats()["created"] == {"gpt4o-image": 1}
