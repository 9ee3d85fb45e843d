"""Recraft against the KIE emulator over real HTTP: background removal and upscaling of a real
source image, and failed tasks mapped to a failed status."""

from __future__ import annotations

import asyncio

import pytest
from kierouter_recraft import CARDS, RecraftProvider

from kierouter import ImageRequest, KieValidationError
from kierouter._transport import KieClient
from kierouter.provider import MARKET_CREATE_PATH, MARKET_STATUS_PATH
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}


def _png_header(png: bytes) -> tuple[int, int, int]:
    """Width, height and PNG colour type (6 = RGBA)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"), png[25]


async def _source_image(client: KieClient) -> str:
    """A 16:9 image generated on the emulator with a plain Market call (no other plugin)."""
    body = {"model": "google/nano-banana", "input": {"prompt": "a cat", "aspect_ratio": "16:9"}}
    task_id = (await client.create(MARKET_CREATE_PATH, body))["taskId"]
    while True:
        try:
            data = await client.read(MARKET_STATUS_PATH, {"taskId": task_id})
        except KieValidationError as exc:
            # KIE (and the emulator) answer 422 "recordInfo is null" until a new task is readable
            if "recordInfo is null" not in str(exc):
                raise
        else:
            status = RecraftProvider().parse_status(data, task_id=task_id)
            if status.done:
                return status.urls[0]
        await asyncio.sleep(0.01)


async def test_crisp_upscale(kie_emulator: Emulator, kie_client: KieClient) -> None:
    """crisp-upscale receives the image URL and returns a larger image of the same shape."""
    source = await _source_image(kie_client)
    request = ImageRequest(task="upscale", images=(source,))
    status = await run_task(kie_client, RecraftProvider(), BY_ID["recraft/crisp-upscale"], request)
    assert status.state == "success" and len(status.urls) == 1
    before = _png_header((await kie_client.http.get(source)).content)
    after = _png_header((await kie_client.http.get(status.urls[0])).content)
    assert after[0] > before[0] and after[0] * before[1] == after[1] * before[0]
    assert kie_emulator.stats()["created"]["recraft/crisp-upscale"] == 1


async def test_remove_background(kie_emulator: Emulator, kie_client: KieClient) -> None:
    """remove-background returns an RGBA PNG of the input's size for 1 credit."""
    source = await _source_image(kie_client)
    card = BY_ID["recraft/remove-background"]
    request = ImageRequest(task="remove-background", images=(source,))
    status = await run_task(kie_client, RecraftProvider(), card, request)
    before = _png_header((await kie_client.http.get(source)).content)
    after = _png_header((await kie_client.http.get(status.urls[0])).content)
    assert after == (before[0], before[1], 6)
    charged = kie_emulator.stats()["credits_charged"]
    assert charged - 4 == card.credits_for(request) == 1  # 4 for the source image


@pytest.mark.parametrize("model", [c.id for c in CARDS])
async def test_failure_maps_to_failed_status(
    kie_emulator: Emulator, kie_client: KieClient, model: str
) -> None:
    """A task KIE fails comes back failed, with KIE's failCode and failMsg and no URLs."""
    kie_emulator.configure("recraft", fail_rate=1.0, fail_code="422", fail_msg="image too small")
    kind = BY_ID[model].task_kinds[0]
    request = ImageRequest(task=kind, images=("https://example.com/in.png",))
    status = await run_task(kie_client, RecraftProvider(), BY_ID[model], request)
    assert (status.state, status.fail_code, status.fail_message) == (
        "failed",
        "422",
        "image too small",
    )
    assert status.urls == ()
