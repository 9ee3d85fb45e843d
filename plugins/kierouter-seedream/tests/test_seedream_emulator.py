"""Seedream against the KIE emulator over real HTTP: every model generates or edits, KIE accepts
every body the translation builds, and failed tasks map to a failed status with KIE's code."""

from __future__ import annotations

import kierouter_seedream
import pytest
from kierouter_seedream import CARDS, SeedreamProvider

from kierouter import ImageRequest, Router
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
GENERATE = [c.id for c in CARDS if "generate" in c.task_kinds]
EDIT = [c.id for c in CARDS if "edit" in c.task_kinds]


@pytest.mark.parametrize("model", GENERATE)
async def test_generate(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each text-to-image model succeeds with one result URL served by the emulator."""
    request = ImageRequest(prompt="a red fox in fresh snow", aspect_ratio="16:9", resolution="4K")
    status = await run_task(kie_client, SeedreamProvider(), BY_ID[model], request)
    assert status.state == "success" and len(status.urls) == 1
    assert status.urls[0].startswith(kie_emulator.base_url)
    assert kie_emulator.stats()["created"] == {model: 1}


@pytest.mark.parametrize("model", EDIT)
async def test_edit(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each edit model accepts reference images (at its maximum count) and succeeds."""
    card = BY_ID[model]
    images = tuple(f"{IMG}?n={i}" for i in range(card.capabilities.max_reference_images))
    request = ImageRequest(prompt="make it a cyberpunk city at night", images=images)
    status = await run_task(kie_client, SeedreamProvider(), card, request)
    assert status.state == "success" and len(status.urls) == 1


async def test_v4_count_gives_that_many_images(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """count=3 on v4 sends max_images=3 and the task returns three images, charged per image."""
    card = BY_ID["bytedance/seedream-v4-text-to-image"]
    request = ImageRequest(prompt="three views of a teapot", count=3, seed=5)
    status = await run_task(kie_client, SeedreamProvider(), card, request)
    assert len(status.urls) == 3 and len(set(status.urls)) == 3
    assert kie_emulator.stats()["credits_charged"] == card.credits_for(request) == 10.5


async def test_result_has_the_requested_shape(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """The downloaded 9:16 result is portrait: the ratio really reached the model."""
    card = BY_ID["seedream/5-lite-text-to-image"]
    request = ImageRequest(prompt="a tall lighthouse", aspect_ratio="9:16")
    status = await run_task(kie_client, SeedreamProvider(), card, request)
    png = (await kie_client.http.get(status.urls[0])).content
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and height > width


@pytest.mark.parametrize("model", ["bytedance/seedream-v4-text-to-image", "seedream/4.5-edit"])
async def test_failure_maps_to_failed_status(
    kie_emulator: Emulator, kie_client: KieClient, model: str
) -> None:
    """A task KIE fails comes back failed, with KIE's failCode and failMsg and no URLs."""
    kie_emulator.configure(model, fail_rate=1.0, fail_code="501", fail_msg="generation failed")
    images = (IMG,) if "edit" in BY_ID[model].task_kinds else ()
    request = ImageRequest(prompt="a red fox", images=images)
    status = await run_task(kie_client, SeedreamProvider(), BY_ID[model], request)
    assert (status.state, status.raw_state) == ("failed", "fail")
    assert (status.fail_code, status.fail_message, status.urls) == ("501", "generation failed", ())


async def test_router_escalates_within_the_family(kie_emulator: Emulator, tmp_path: object) -> None:
    """Through the router: v4 fails, the next Seedream model serves the job; the seed is sent to
    v4 and reported ignored on the model that has none."""
    kie_emulator.configure("bytedance/seedream-v4-text-to-image", fail_rate=1.0)
    async with Router(
        [kierouter_seedream],
        api_key=kie_emulator.api_key,
        base_url=kie_emulator.base_url,
        policy="auto",
        allow_private_downloads=True,
        latency_scale=1 / 1000,
        out_dir=str(tmp_path),
    ) as router:
        result = await router.generate(ImageRequest(prompt="a red fox", seed=11))
    first, second = result.attempts[0], result.attempts[-1]
    assert (first.model, first.outcome, first.seed_ignored) == (
        "bytedance/seedream-v4-text-to-image",
        "failed",
        False,
    )
    assert first.seed is not None
    assert second.outcome == "success" and second.seed_ignored and second.seed is None
    assert result.served_model == second.model != first.model
    assert len(result.files) == 1
