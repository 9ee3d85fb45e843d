"""Nano Banana validation: every request a model cannot run raises ValidationError naming the
field and what it allows, before any HTTP call (the emulator's counters stay at zero)."""

from __future__ import annotations

from typing import Any

import pytest
from kierouter_nano_banana import CARDS, MODEL_OPTIONS, NanoBananaProvider

from kierouter import ImageRequest, ValidationError
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://example.com/in.png"
NB, NBE, PRO, NB2 = (
    "google/nano-banana",
    "google/nano-banana-edit",
    "nano-banana-pro",
    "nano-banana-2",
)
FAMILY_KEYS = ("aspect_ratio", "image_size", "output_format", "resolution")
PRO_RATIOS = BY_ID[PRO].capabilities.aspect_ratios


def _req(prompt: str = "a cat", **fields: Any) -> ImageRequest:
    return ImageRequest(prompt=prompt, **fields)


def _opt(key: str, value: Any, where: str = "nano-banana", **fields: Any) -> ImageRequest:
    return _req(options={where: {key: value}}, **fields)


# (model, request, field, allowed or None when the field has no finite set)
CASES: list[tuple[str, ImageRequest, str, tuple[Any, ...] | None]] = [
    (NB, _req(images=(IMG,)), "task", ("generate",)),
    (NBE, _req(), "task", ("edit",)),
    (PRO, ImageRequest(task="remove-background", images=(IMG,)), "task", ("generate", "edit")),
    (NB, _req(task="generate", images=(IMG,)), "images", ()),
    (NBE, _req(images=(IMG,) * 11), "images", tuple(range(1, 11))),
    (PRO, _req(images=(IMG,) * 9), "images", tuple(range(1, 9))),
    (NB2, _req(images=(IMG,) * 15), "images", tuple(range(1, 15))),
    (NB2, _req(count=2), "count", (1,)),
    (NB, _req("x" * 5001), "prompt", None),
    (PRO, _req("x" * 10001), "prompt", None),
    (NB2, _req("x" * 20001), "prompt", None),
    (PRO, _req(mask=IMG, images=(IMG,)), "mask", ()),
    (NB2, _req(resolution="8K"), "resolution", ("1K", "2K", "4K")),
    (NB2, _opt("steps", 30), "options.steps", FAMILY_KEYS),
    (NB, _opt("resolution", "2K", NB), "options.resolution", MODEL_OPTIONS[NB]),
    (PRO, _opt("aspect_ratio", "1:8"), "options.aspect_ratio", PRO_RATIOS),
    (NB, _opt("output_format", "webp"), "options.output_format", ("png", "jpg", "jpeg")),
    (PRO, _opt("resolution", "8K"), "options.resolution", ("1K", "2K", "4K")),
    (NB, _req(aspect_ratio="tall"), "aspect_ratio", None),
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
        await run_task(kie_client, NanoBananaProvider(), BY_ID[model], request_)
    error = caught.value
    assert error.field == field and field in str(error)
    if allowed is not None and field != "aspect_ratio":
        assert error.allowed == allowed and "allowed:" in str(error)
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)


def test_cannot_edit_names_the_models_that_can() -> None:
    """The text-to-image model's refusal points at the Nano Banana models that edit."""
    with pytest.raises(ValidationError) as caught:
        NanoBananaProvider().prepare(BY_ID[NB], _req(images=(IMG,)))
    assert all(m in str(caught.value) for m in (NBE, NB2, PRO))
