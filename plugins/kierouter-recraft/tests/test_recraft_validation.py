"""Recraft validation: wrong task kinds, options, masks, counts and image counts raise
ValidationError naming the field and what it allows, before any HTTP call."""

from __future__ import annotations

from typing import Any

import pytest
from kierouter_recraft import CARDS, RecraftProvider

from kierouter import ImageRequest, ValidationError
from kierouter._transport import KieClient
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://example.com/in.png"
RB, UP = "recraft/remove-background", "recraft/crisp-upscale"

# (model, request, field, allowed or None when the field has no finite set)
CASES: list[tuple[str, ImageRequest, str, tuple[Any, ...] | None]] = [
    (RB, ImageRequest(task="upscale", images=(IMG,)), "task", ("remove-background",)),
    (UP, ImageRequest(task="remove-background", images=(IMG,)), "task", ("upscale",)),
    (UP, ImageRequest(prompt="sharper", images=(IMG,)), "task", ("upscale",)),
    (RB, ImageRequest(prompt="a cat"), "task", ("remove-background",)),
    (UP, ImageRequest(task="upscale"), "images", None),
    (RB, ImageRequest(task="remove-background", images=(IMG, IMG)), "images", None),
    (RB, ImageRequest(task="remove-background", images=("file:///tmp/a.png",)), "images[0]", None),
    (UP, ImageRequest(task="upscale", images=(IMG,), count=2), "count", (1,)),
    (RB, ImageRequest(task="remove-background", images=(IMG,), mask=IMG), "mask", ()),
    (UP, ImageRequest(task="upscale", images=(IMG,), options={UP: {"scale": 4}}),
     "options.scale", ()),
    (RB, ImageRequest(task="remove-background", images=(IMG,), options={"recraft": {"x": 1}}),
     "options.x", ()),
]  # fmt: skip


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
        await run_task(kie_client, RecraftProvider(), BY_ID[model], request_)
    error = caught.value
    assert error.field == field and field in str(error)
    if allowed is not None:
        assert error.allowed == allowed
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)


def test_wrong_utility_names_the_other_model() -> None:
    """Asking remove-background to upscale points at crisp-upscale."""
    with pytest.raises(ValidationError, match="use recraft/crisp-upscale"):
        RecraftProvider().prepare(BY_ID[RB], ImageRequest(task="upscale", images=(IMG,)))
