"""Qwen validation: every request a model cannot run raises ValidationError naming the field and
what it allows, before any HTTP call (checked on the emulator's counters and on a router whose
transport records requests)."""

from __future__ import annotations

from typing import Any

import httpx
import kierouter_qwen
import pytest
from kierouter_qwen import CARDS, MODEL_OPTIONS, QwenProvider

from kierouter import ImageRequest, JobFailedError, Policy, Router, ValidationError
from kierouter._transport import KieClient
from kierouter.policy import Constraints
from kierouter.sim import Emulator
from kierouter.testing import run_task

pytest_plugins = ["kierouter.testing"]

BY_ID = {card.id: card for card in CARDS}
IMG = "https://example.com/in.png"

T2I, I2I, EDIT = "qwen/text-to-image", "qwen/image-to-image", "qwen/image-edit"
Q2, Q2E = "qwen2/text-to-image", "qwen2/image-edit"
FAMILY_KEYS = (
    "acceleration", "enable_safety_checker", "guidance_scale", "image_size", "nsfw_checker",
    "num_inference_steps", "output_format", "strength",
)  # fmt: skip
NAMES = ("square", "square_hd", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
T2I_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16")
Q2_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
Q2_NAMES = ("square_hd", "landscape_4_3", "portrait_4_3", "landscape_16_9", "portrait_16_9")


def _req(prompt: str = "a cat", **fields: Any) -> ImageRequest:
    return ImageRequest(prompt=prompt, **fields)


def _opt(key: str, value: Any, where: str = "qwen", **fields: Any) -> ImageRequest:
    return _req(options={where: {key: value}}, **fields)


# (model, request, field, allowed or None when the field has no finite set)
CASES: list[tuple[str, ImageRequest, str, tuple[Any, ...] | None]] = [
    # a model that cannot edit asked to edit, and the reverse
    (T2I, _req(images=(IMG,)), "task", ("generate",)),
    (Q2, _req(images=(IMG,)), "task", ("generate",)),
    (EDIT, _req(), "task", ("edit",)),
    (Q2E, ImageRequest(task="upscale", images=(IMG,)), "task", ("edit",)),
    (T2I, _req(task="generate", images=(IMG,)), "images", ()),
    # too many reference images
    (EDIT, _req(images=(IMG, IMG)), "images", (1,)),
    (I2I, _req(images=(IMG,) * 3), "images", (1,)),
    (Q2E, _req(images=(IMG, IMG)), "images", (1,)),
    # steps out of range (2–250; 2–49 on image-edit), and not an integer
    (EDIT, _opt("num_inference_steps", 50, images=(IMG,)), "options.num_inference_steps", None),
    (T2I, _opt("num_inference_steps", 251), "options.num_inference_steps", None),
    (I2I, _opt("num_inference_steps", 1, I2I, images=(IMG,)), "options.num_inference_steps", None),
    (T2I, _opt("num_inference_steps", 30.5), "options.num_inference_steps", None),
    (T2I, _opt("guidance_scale", 21), "options.guidance_scale", None),
    (I2I, _opt("strength", 1.5, images=(IMG,)), "options.strength", None),
    (T2I, _opt("acceleration", "turbo"), "options.acceleration", ("none", "regular", "high")),
    # unknown sizes and options
    (T2I, _opt("image_size", "21:9"), "options.image_size", (*NAMES, *T2I_RATIOS)),
    (Q2, _opt("image_size", "21:9"), "options.image_size", (*Q2_RATIOS, *Q2_NAMES)),
    (Q2, _opt("image_size", "square"), "options.image_size", (*Q2_RATIOS, *Q2_NAMES)),
    (Q2, _opt("acceleration", "high", Q2), "options.acceleration", MODEL_OPTIONS[Q2]),
    (I2I, _opt("image_size", "square", I2I, images=(IMG,)), "options.image_size", None),
    (T2I, _opt("acceleration_level", "high"), "options.acceleration_level", FAMILY_KEYS),
    (T2I, _opt("num_images", "2"), "options.num_images", FAMILY_KEYS),
    (T2I, _opt("output_format", "webp"), "options.output_format", ("png", "jpeg", "jpg")),
    (Q2E, _opt("nsfw_checker", "no", images=(IMG,)), "options.nsfw_checker", (True, False)),
    (T2I, _req(aspect_ratio="wide"), "aspect_ratio", None),
    # counts, prompts, masks, resolutions
    (EDIT, _req(images=(IMG,), count=5), "count", (1, 2, 3, 4)),
    (T2I, _req(count=2), "count", (1,)),
    (Q2, _req("x" * 801), "prompt", None),
    (EDIT, _req("x" * 2001, images=(IMG,)), "prompt", None),
    (T2I, _req("x" * 5001), "prompt", None),
    (T2I, _req(negative_prompt="n" * 501), "negative_prompt", None),
    (EDIT, _req(images=(IMG,), mask=IMG), "mask", ()),
    (Q2, _req(resolution="8K"), "resolution", ("1K", "2K", "4K")),
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
        await run_task(kie_client, QwenProvider(), BY_ID[model], request_)
    error = caught.value
    assert error.field == field
    assert field in str(error)
    if allowed is not None:
        assert error.allowed == allowed
        assert "allowed:" in str(error)
    stats = kie_emulator.stats()
    assert (stats["created_total"], stats["status_reads"]) == (0, 0)


@pytest.mark.parametrize(("model", "high"), [(EDIT, 49), (T2I, 250)])
def test_steps_error_states_the_range(model: str, high: int) -> None:
    """An out-of-range step count names the field and the model's own range in the message."""
    images = (IMG,) if model == EDIT else ()
    request = _opt("num_inference_steps", 300, model, images=images)
    with pytest.raises(ValidationError, match=f"out of range 2..{high}") as caught:
        QwenProvider().prepare(BY_ID[model], request)
    assert caught.value.field == "options.num_inference_steps"


async def test_router_refuses_without_sending_anything() -> None:
    """A router limited to a text-to-image model, asked to edit, fails the job saying that model
    takes no input image, and never touches the network."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    policy = Policy(name="only-qwen2", ladder=("qwen",), constraints=Constraints(allow=(Q2,)))
    async with Router(
        [kierouter_qwen],
        api_key="test-key-123",
        transport=httpx.MockTransport(handler),
        policy=policy,
    ) as router:
        with pytest.raises(JobFailedError) as caught:
            await router.generate(ImageRequest(prompt="a cat", task="generate", images=(IMG,)))
    # dropped by the planner or skipped by the provider: either way nothing is sent
    assert all(a.outcome == "skipped" for a in caught.value.attempts)
    assert Q2 in str(caught.value) and "reference image" in str(caught.value)
    assert sent == []


def test_provider_names_the_edit_model() -> None:
    """Called directly, the provider refuses a
    text-to-image model an input image, naming the edit model to use instead."""
    with pytest.raises(ValidationError) as caught:
        QwenProvider().prepare(BY_ID[Q2], _req(task="generate", images=(IMG,)))
    assert caught.value.field == "images" and Q2E in str(caught.value)
