"""GPT-4o image validation: every request the 4o API cannot run raises ValidationError naming
the field and what it allows, before any HTTP call (checked on the emulator's counters)."""

from __future__ import annotations

from typing import Any

import pytest
from kierouter_gpt4o_image import GPT4O_IMAGE, Gpt4oImageProvider

from kierouter import ImageRequest, ValidationError
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

IMG = "https://example.com/in.png"
OPTION_KEYS = ("size", "isEnhance", "uploadCn", "enableFallback", "fallbackModel")


def _req(prompt: str = "a sign that says HI", **fields: Any) -> ImageRequest:
    return ImageRequest(prompt=prompt, **fields)


def _opt(**options: Any) -> ImageRequest:
    return _req(options={"gpt4o-image": options})


# (request, field, allowed or None when the field has no finite set)
CASES: list[tuple[ImageRequest, str, tuple[Any, ...] | None]] = [
    (_req(images=(IMG,) * 6), "images", (1, 2, 3, 4, 5)),
    (_req(count=3), "count", (1, 2, 4)),
    (_req(count=8), "count", (1, 2, 4)),
    (_req(mask=IMG), "mask", (1,)),
    (_req(images=(IMG, IMG), mask=IMG), "mask", (1,)),
    (ImageRequest(task="upscale", images=(IMG,)), "task", ("generate", "edit")),
    (ImageRequest(task="remove-background", images=(IMG,)), "task", ("generate", "edit")),
    (_req("x" * 5001), "prompt", None),
    (_req(""), "prompt", None),
    (_req(aspect_ratio="wide"), "aspect_ratio", None),
    (_opt(size="16:9"), "options.size", ("1:1", "3:2", "2:3")),
    (_opt(nVariants=4), "options.nVariants", OPTION_KEYS),
    (_opt(isEnhance="yes"), "options.isEnhance", (True, False)),
    (
        _opt(fallbackModel="DALL_E", enableFallback=True),
        "options.fallbackModel",
        ("GPT_IMAGE_1", "FLUX_MAX"),
    ),
    (_opt(fallbackModel="FLUX_MAX"), "options.fallbackModel", (True,)),
    (_req(options={"gpt4o-image": {"model": "gpt-4o"}}), "options.model", OPTION_KEYS),
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
        await run_task(kie_client, Gpt4oImageProvider(), GPT4O_IMAGE, request_)
    error = caught.value
    assert error.field == field and field in str(error)
    if allowed is not None:
        assert error.allowed == allowed and "allowed:" in str(error)
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)
