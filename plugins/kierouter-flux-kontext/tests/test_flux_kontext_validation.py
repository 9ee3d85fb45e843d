"""Flux Kontext validation: every request the models cannot run raises ValidationError naming the
field and what it allows, before any HTTP call (checked on the emulator's counters)."""

from __future__ import annotations

from typing import Any

import pytest
from kierouter_flux_kontext import CARDS, FLUX_ASPECT_RATIOS, MODEL_OPTIONS, FluxKontextProvider

from kierouter import ImageRequest, ValidationError
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
PRO, MAX = "flux-kontext-pro", "flux-kontext-max"
IMG = "https://example.com/in.png"
OPTIONS = MODEL_OPTIONS[PRO]


def _req(prompt: str = "a cat", **fields: Any) -> ImageRequest:
    return ImageRequest(prompt=prompt, **fields)


def _opt(key: str, value: Any, where: str = "flux-kontext", **fields: Any) -> ImageRequest:
    return _req(options={where: {key: value}}, **fields)


# (model, request, field, allowed or None when the field has no finite set)
CASES: list[tuple[str, ImageRequest, str, tuple[Any, ...] | None]] = [
    (PRO, ImageRequest(task="upscale", images=(IMG,)), "task", ("generate", "edit")),
    (MAX, ImageRequest(task="remove-background", images=(IMG,)), "task", ("generate", "edit")),
    (PRO, _req(task="generate", images=(IMG,)), "images", ()),
    (MAX, _req(images=(IMG, IMG)), "images", (1,)),
    (PRO, _req(images=(IMG,), mask=IMG), "mask", ()),
    (PRO, _req(count=4), "count", (1,)),
    (MAX, _req("x" * 5001), "prompt", None),
    (PRO, _req(resolution="8K"), "resolution", ("1K", "2K", "4K")),
    (PRO, _req(aspect_ratio="wide"), "aspect_ratio", None),
    # safetyTolerance: 0..6 generating, 0..2 editing (KIE answers code 500 outside)
    (PRO, _opt("safetyTolerance", 7), "options.safetyTolerance", (0, 1, 2, 3, 4, 5, 6)),
    (MAX, _opt("safetyTolerance", 3, images=(IMG,)), "options.safetyTolerance", (0, 1, 2)),
    (PRO, _opt("safetyTolerance", "2"), "options.safetyTolerance", (0, 1, 2, 3, 4, 5, 6)),
    (PRO, _opt("aspectRatio", "5:4"), "options.aspectRatio", FLUX_ASPECT_RATIOS),
    (PRO, _opt("outputFormat", "webp", PRO), "options.outputFormat", ("jpeg", "jpg", "png")),
    (MAX, _opt("promptUpsampling", "yes"), "options.promptUpsampling", (True, False)),
    (MAX, _opt("enableTranslation", 1), "options.enableTranslation", (True, False)),
    (MAX, _opt("uploadCn", None), "options.uploadCn", (True, False)),
    (PRO, _opt("watermark", 5), "options.watermark", None),
    # the sheet's edit field and other families' fields do not exist here
    (PRO, _opt("imageUrl", IMG), "options.imageUrl", OPTIONS),
    (MAX, _opt("seed", 3, MAX), "options.seed", OPTIONS),
    (PRO, _opt("aspect_ratio", "1:1"), "options.aspect_ratio", OPTIONS),
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
        await run_task(kie_client, FluxKontextProvider(), BY_ID[model], request_)
    error = caught.value
    assert error.field == field
    assert field in str(error)
    if allowed is not None:
        assert error.allowed == allowed
        assert "allowed:" in str(error)
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)


def test_safety_tolerance_message_names_the_mode() -> None:
    """The safetyTolerance error says which mode's range applies."""
    request = _opt("safetyTolerance", 4, images=(IMG,))
    with pytest.raises(ValidationError, match=r"when editing \(0\.\.2\)"):
        FluxKontextProvider().prepare(BY_ID[PRO], request)
