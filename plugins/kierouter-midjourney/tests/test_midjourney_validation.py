"""Midjourney validation: every request the MJ API cannot run raises ValidationError naming the
field and what it allows, before any HTTP call (checked on the emulator's counters)."""

from __future__ import annotations

from typing import Any

import pytest
from kierouter_midjourney import MIDJOURNEY, MidjourneyProvider

from kierouter import ImageRequest, ValidationError
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

IMG = "https://example.com/in.png"
VERSIONS = ("7", "6.1", "6", "5.2", "5.1", "niji6", "niji7")
IMAGE_TYPES = ("mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference")
OPTION_KEYS = (
    "taskType", "speed", "version", "aspectRatio", "variety", "stylization", "weirdness", "ow",
    "waterMark", "enableTranslation",
)  # fmt: skip


def _req(prompt: str = "a castle in the clouds", **fields: Any) -> ImageRequest:
    return ImageRequest(prompt=prompt, **fields)


def _opt(images: tuple[str, ...] = (), **options: Any) -> ImageRequest:
    return _req(images=images, options={"midjourney": options})


# (request, field, allowed or None when the field has no finite set)
CASES: list[tuple[ImageRequest, str, tuple[Any, ...] | None]] = [
    (_req(images=(IMG,) * 6), "images", (1, 2, 3, 4, 5)),
    (_req(count=5), "count", (1, 2, 3, 4)),
    (_req(images=(IMG,), mask=IMG), "mask", ()),
    (ImageRequest(task="upscale", images=(IMG,)), "task", ("generate", "edit")),
    (_req("x" * 2001), "prompt", None),
    (_opt(speed="Fast"), "options.speed", ("relaxed", "fast", "turbo")),
    (_opt(speed="Relax"), "options.speed", ("relaxed", "fast", "turbo")),
    (_opt(version="Niji6"), "options.version", VERSIONS),
    (_opt(version="v7"), "options.version", VERSIONS),
    (_opt(version=8), "options.version", VERSIONS),
    (_opt(stylization=1050), "options.stylization", None),
    (_opt(stylization=125), "options.stylization", None),
    (_opt(weirdness=3100), "options.weirdness", None),
    (_opt(weirdness=150), "options.weirdness", None),
    (_opt(variety=7), "options.variety", None),
    (_opt(variety=-5), "options.variety", None),
    (_opt(variety=2.5), "options.variety", None),
    (_opt(taskType="mj_video"), "options.taskType", IMAGE_TYPES),
    (_opt(taskType="mj_upscale"), "options.taskType", IMAGE_TYPES),
    (_opt(taskType="mj_style_reference"), "images", (1, 2, 3, 4, 5)),
    (_opt((IMG,), taskType="mj_txt2img"), "options.taskType", IMAGE_TYPES[1:]),
    (_opt((IMG,), ow=100), "options.ow", ("mj_omni_reference",)),
    (_opt((IMG,), taskType="mj_omni_reference", ow=0), "options.ow", None),
    (_opt(aspectRatio="21:9"), "options.aspectRatio", None),
    (_opt(enableTranslation="yes"), "options.enableTranslation", (True, False)),
    (_opt(waterMark=5), "options.waterMark", None),
    (_opt(seed=5), "options.seed", OPTION_KEYS),
]


@pytest.mark.parametrize(("request_", "field", "allowed"), CASES)
async def test_invalid_requests_fail_before_any_call(
    kie_emulator: Emulator,
    kie_client: KieClient,
    request_: ImageRequest,
    field: str,
    allowed: tuple[Any, ...] | None,
) -> None:
    """The error names the field (and the allowed values when finite); the emulator saw nothing."""
    with pytest.raises(ValidationError) as caught:
        await run_task(kie_client, MidjourneyProvider(), MIDJOURNEY, request_)
    error = caught.value
    assert error.field == field and field in str(error)
    if allowed is not None:
        assert error.allowed == allowed and "allowed:" in str(error)
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)


def test_range_errors_say_the_range_and_step() -> None:
    """An out-of-step stylization names the step (multiples of 50); out of range names 0..1000."""
    provider = MidjourneyProvider()
    with pytest.raises(ValidationError, match="multiple of 50"):
        provider.prepare(MIDJOURNEY, _opt(stylization=125))
    with pytest.raises(ValidationError, match=r"0\.\.1000"):
        provider.prepare(MIDJOURNEY, _opt(stylization=1050))
