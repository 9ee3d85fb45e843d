"""Qwen against the KIE emulator over real HTTP: every model generates or edits, KIE accepts every
body the translation builds (tuning options included), and failed tasks map to a failed status
with KIE's code."""

from __future__ import annotations

from typing import Any

import kierouter_qwen
import pytest
from kierouter_qwen import CARDS, QwenProvider

from kierouter import ImageRequest, Policy, Router
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://static.aiquickdraw.com/tools/example/1773473208660_6EO8TFjh.webp"
GENERATE = [c.id for c in CARDS if "generate" in c.task_kinds]
EDIT = [c.id for c in CARDS if "edit" in c.task_kinds]
TUNING: dict[str, dict[str, Any]] = {
    "qwen/text-to-image": {"num_inference_steps": 250, "guidance_scale": 2.5},
    "qwen/image-to-image": {"num_inference_steps": 2, "strength": 0.8},
    "qwen/image-edit": {"num_inference_steps": 49, "guidance_scale": 4, "output_format": "png"},
    "qwen2/text-to-image": {"output_format": "jpeg"},
    "qwen2/image-edit": {"output_format": "png"},
}


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.parametrize("model", GENERATE)
async def test_generate(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each text-to-image model succeeds with one result URL; the portrait ratio reaches the
    model (a 9:16 request comes back taller than wide)."""
    request = ImageRequest(
        prompt="海报：春节快乐", aspect_ratio="9:16", seed=4, options={model: TUNING[model]}
    )
    status = await run_task(kie_client, QwenProvider(), BY_ID[model], request)
    assert status.state == "success" and len(status.urls) == 1
    assert status.urls[0].startswith(kie_emulator.base_url)
    assert kie_emulator.stats()["created"] == {model: 1}
    width, height = _png_size((await kie_client.http.get(status.urls[0])).content)
    assert height > width


@pytest.mark.parametrize("model", EDIT)
async def test_edit(kie_emulator: Emulator, kie_client: KieClient, model: str) -> None:
    """Each edit model accepts its one input image (a string, or qwen2's one-element array) with
    the negative prompt and tuning options, and succeeds."""
    request = ImageRequest(
        prompt="add sunglasses to the subject",
        images=(IMG,),
        negative_prompt="blurry",
        options={"qwen": {"acceleration": "regular"}, model: TUNING[model]},
    )
    status = await run_task(kie_client, QwenProvider(), BY_ID[model], request)
    assert status.state == "success" and len(status.urls) == 1


@pytest.mark.parametrize(
    ("model", "images", "shape"),
    [
        ("qwen2/text-to-image", (), "landscape"),
        ("qwen2/image-edit", (IMG,), "landscape"),
        ("qwen/image-edit", (IMG,), "landscape"),
        ("qwen/text-to-image", (), "square"),
    ],
)
async def test_no_ratio_leaves_kies_default(
    kie_emulator: Emulator,
    kie_client: KieClient,
    model: str,
    images: tuple[str, ...],
    shape: str,
) -> None:
    """Without an aspect ratio no image_size is sent, and the image has the shape of KIE's
    default for that model (16:9 on Qwen 2, landscape_4_3 on image-edit, square_hd)."""
    request = ImageRequest(prompt="a quiet harbour", images=images)
    assert "image_size" not in QwenProvider().prepare(BY_ID[model], request).body["input"]
    status = await run_task(kie_client, QwenProvider(), BY_ID[model], request)
    width, height = _png_size((await kie_client.http.get(status.urls[0])).content)
    assert width > height if shape == "landscape" else width == height


async def test_image_edit_count_gives_that_many_images(
    kie_emulator: Emulator, kie_client: KieClient
) -> None:
    """count=4 on qwen/image-edit sends num_images "4": four different images, charged per image
    exactly as the card prices them."""
    card = BY_ID["qwen/image-edit"]
    request = ImageRequest(prompt="four variations", images=(IMG,), count=4)
    status = await run_task(kie_client, QwenProvider(), card, request)
    assert len(status.urls) == 4 and len(set(status.urls)) == 4
    assert kie_emulator.stats()["credits_charged"] == card.credits_for(request) == 32.0


@pytest.mark.parametrize("model", ["qwen/text-to-image", "qwen2/image-edit"])
async def test_failure_maps_to_failed_status(
    kie_emulator: Emulator, kie_client: KieClient, model: str
) -> None:
    """A task KIE fails comes back failed, with KIE's failCode and failMsg and no URLs."""
    kie_emulator.configure(model, fail_rate=1.0, fail_code="500", fail_msg="internal error")
    images = (IMG,) if "edit" in BY_ID[model].task_kinds else ()
    status = await run_task(
        kie_client, QwenProvider(), BY_ID[model], ImageRequest(prompt="a fox", images=images)
    )
    assert (status.state, status.raw_state) == ("failed", "fail")
    assert (status.fail_code, status.fail_message, status.urls) == ("500", "internal error", ())


async def test_router_escalates_within_the_family(kie_emulator: Emulator, tmp_path: object) -> None:
    """Through the router: when the Qwen model the plan tries first fails, another Qwen model
    serves the job and its image is downloaded."""
    async with Router(
        [kierouter_qwen],
        api_key=kie_emulator.api_key,
        base_url=kie_emulator.base_url,
        policy=Policy(name="qwen-only", ladder=("qwen",)),
        allow_private_downloads=True,
        latency_scale=1 / 1000,
        out_dir=str(tmp_path),
    ) as router:
        request = ImageRequest(prompt="a shop sign that says 茶", seed=11)
        preferred = (await router.generate(request)).served_model
        assert preferred in GENERATE
        kie_emulator.configure(preferred, fail_rate=1.0)
        result = await router.generate(request)
    first, last = result.attempts[0], result.attempts[-1]
    assert (first.model, first.outcome) == (preferred, "failed")
    assert last.outcome == "success" and result.served_model == last.model != preferred
    assert last.model in GENERATE and len(result.files) == 1
