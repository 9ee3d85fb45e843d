"""Nano Banana against the KIE emulator over real HTTP: generate and edit on every model, the
requested resolution priced and rendered, and failed tasks mapped to a failed status."""

from __future__ import annotations

import pytest
from kierouter_nano_banana import CARDS, NanoBananaProvider

from kierouter import ImageRequest
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.parametrize("model", [c.id for c in CARDS if "generate" in c.task_kinds])
async def test_generate(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each model that generates succeeds with one emulator-served URL, ratio honoured."""
    request = ImageRequest(prompt="a banana on a beach", aspect_ratio="16:9")
    status = await run_task(kie_client, NanoBananaProvider(), BY_ID[model], request)
    assert status.state == "success" and len(status.urls) == 1
    width, height = _png_size((await kie_client.http.get(status.urls[0])).content)
    assert width > height
    assert kie_emulator.stats()["created"] == {model: 1}


@pytest.mark.parametrize("model", [c.id for c in CARDS if "edit" in c.task_kinds])
async def test_edit(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each model that edits accepts its maximum number of reference images and succeeds."""
    card = BY_ID[model]
    images = tuple(f"{IMG}?n={i}" for i in range(card.capabilities.max_reference_images))
    request = ImageRequest(prompt="put a party hat on it", images=images)
    status = await run_task(kie_client, NanoBananaProvider(), card, request)
    assert status.state == "success" and len(status.urls) == 1


@pytest.mark.parametrize(("model", "credits"), [("nano-banana-2", 18.0), ("nano-banana-pro", 24.0)])
async def test_4k_is_sent_and_charged(
    kie_emulator: Emulator, kie_client: KieClient, model: str, credits: float
) -> None:
    """A 4K request reaches the model (bigger image) and costs what the card predicts."""
    card = BY_ID[model]
    request = ImageRequest(prompt="a detailed city map", resolution="4K")
    status = await run_task(kie_client, NanoBananaProvider(), card, request)
    small = await run_task(kie_client, NanoBananaProvider(), card, ImageRequest(prompt="a map"))
    big_png = (await kie_client.http.get(status.urls[0])).content
    small_png = (await kie_client.http.get(small.urls[0])).content
    assert _png_size(big_png)[0] > _png_size(small_png)[0]
    assert card.credits_for(request) == credits
    assert kie_emulator.stats()["credits_charged"] == credits + card.credits_for(None)


@pytest.mark.parametrize("model", ["google/nano-banana", "nano-banana-pro"])
async def test_failure_maps_to_failed_status(
    kie_emulator: Emulator, kie_client: KieClient, model: str
) -> None:
    """A task KIE fails comes back failed, with KIE's failCode and failMsg and no URLs."""
    kie_emulator.configure("nano-banana", fail_rate=1.0, fail_code="400", fail_msg="flagged")
    request = ImageRequest(prompt="a banana")
    status = await run_task(kie_client, NanoBananaProvider(), BY_ID[model], request)
    assert (status.state, status.raw_state) == ("failed", "fail")
    assert (status.fail_code, status.fail_message, status.urls) == ("400", "flagged", ())
