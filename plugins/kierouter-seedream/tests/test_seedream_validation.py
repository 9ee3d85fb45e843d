"""Seedream validation: every request a model cannot run raises ValidationError naming the field
and what it allows, before any HTTP call (checked on the emulator's counters and on a router
whose transport counts requests)."""

from __future__ import annotations

from typing import Any

import httpx
import kierouter_seedream
import pytest
from kierouter_seedream import CARDS, MODEL_OPTIONS, SeedreamProvider

from kierouter import ImageRequest, JobFailedError, Policy, Router, ValidationError
from kierouter._transport import KieClient
from kierouter.policy import Constraints
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://example.com/in.png"
RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")

V4, V4E = "bytedance/seedream-v4-text-to-image", "bytedance/seedream-v4-edit"
S45, S45E = "seedream/4.5-text-to-image", "seedream/4.5-edit"
L5, L5E = "seedream/5-lite-text-to-image", "seedream/5-lite-image-to-image"
FAMILY_KEYS = ("aspect_ratio", "image_resolution", "image_size", "nsfw_checker", "quality")


def _req(prompt: str = "a cat", **fields: Any) -> ImageRequest:
    return ImageRequest(prompt=prompt, **fields)


def _opt(key: str, value: Any, where: str = "seedream", **fields: Any) -> ImageRequest:
    return _req(options={where: {key: value}}, **fields)


# (model, request, field, allowed or None when the field has no finite set)
CASES: list[tuple[str, ImageRequest, str, tuple[Any, ...] | None]] = [
    (L5, _req(images=(IMG,)), "task", ("generate",)),
    (S45E, _req(), "task", ("edit",)),
    (V4, ImageRequest(task="upscale", images=(IMG,)), "task", ("generate",)),
    (S45, _req(task="generate", images=(IMG,)), "images", ()),
    (L5E, _req(images=(IMG,) * 15), "images", tuple(range(1, 15))),
    (V4E, _req(images=(IMG,) * 11), "images", tuple(range(1, 11))),
    (V4, _req(count=7), "count", (1, 2, 3, 4, 5, 6)),
    (S45, _req(count=2), "count", (1,)),
    (S45, _req("x" * 3001), "prompt", None),
    (V4, _req("x" * 5001), "prompt", None),
    (L5, _req("hi"), "prompt", None),
    (L5, _req(aspect_ratio="wide"), "aspect_ratio", None),
    (L5E, _req(images=(IMG,), mask=IMG), "mask", ()),
    (V4, _req(resolution="8K"), "resolution", ("1K", "2K", "4K")),
    (S45, _opt("num_inference_steps", 30), "options.num_inference_steps", FAMILY_KEYS),
    (S45, _opt("image_size", "square", S45), "options.image_size", MODEL_OPTIONS[S45]),
    (S45, _opt("quality", "ultra"), "options.quality", ("basic", "high")),
    (L5, _opt("aspect_ratio", "5:4"), "options.aspect_ratio", RATIOS),
    (V4, _opt("image_size", "wide"), "options.image_size", None),
    (V4E, _opt("nsfw_checker", "no", images=(IMG,)), "options.nsfw_checker", (True, False)),
]


@pytest.mark.parametrize(("model", "request_", "field", "allowed"), CASES)
async def test_invalid_requests_fail_before_any_call(
    kie_emulator: Emulator,
    kie_client: KieClient,
    model: str,
    request_: ImageRequest,
    field: str,
    allowed: tuple[Any, ...] | None,
) -> None:
    """The error names the field (and the allowed values when finite); the emulator saw nothing."""
    with pytest.raises(ValidationError) as caught:
        await run_task(kie_client, SeedreamProvider(), BY_ID[model], request_)
    error = caught.value
    assert error.field == field
    assert field in str(error)
    if allowed is not None and field != "aspect_ratio":
        assert error.allowed == allowed
        assert "allowed:" in str(error)
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)


def test_v4_image_size_option_lists_the_nine_names() -> None:
    """A bad explicit image_size lists all nine v4 names, square included."""
    request = ImageRequest(prompt="a cat", options={"seedream": {"image_size": "wide"}})
    with pytest.raises(ValidationError) as caught:
        SeedreamProvider().prepare(BY_ID["bytedance/seedream-v4-text-to-image"], request)
    assert caught.value.allowed is not None and len(caught.value.allowed) == 9
    assert "square" in caught.value.allowed and "square_hd" in caught.value.allowed


async def test_router_skips_the_model_without_sending_anything() -> None:
    """A router limited to a text-to-image model, asked to edit, skips it with the reason and
    never touches the network."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    policy = Policy(
        name="only-5-lite",
        ladder=("seedream",),
        constraints=Constraints(allow=("seedream/5-lite-text-to-image",)),
    )
    async with Router(
        [kierouter_seedream],
        api_key="test-key-123",
        transport=httpx.MockTransport(handler),
        policy=policy,
    ) as router:
        with pytest.raises(JobFailedError) as caught:
            await router.generate(ImageRequest(prompt="a cat", task="generate", images=(IMG,)))
    attempts = caught.value.attempts
    assert [(a.model, a.outcome) for a in attempts] == [
        ("seedream/5-lite-text-to-image", "skipped")
    ]
    assert "images" in attempts[0].reason and "seedream/5-lite-image-to-image" in attempts[0].reason
    assert sent == []
