"""kierouter plugin for KIE's Wan 2.7 Image (Market model ``wan/2-7-image``).

This is kierouter's copy-me plugin template: a complete, tested plugin for one KIE Market model.
To make your own, copy the directory, rename ``kierouter_example`` and ``kierouter-example``,
and change the three things marked CHANGE below: the model card, ``build_input`` and the hook.

KIE documents the model's input as: ``prompt``; ``input_urls`` (up to 9 images; edit mode);
``aspect_ratio`` 1:1, 16:9, 4:3, 21:9, 3:4, 9:16, 8:1, 1:8; ``n`` 1–4 images (1–12 with
``enable_sequential``); ``resolution`` 1K or 2K (default 2K); ``seed``; ``enable_sequential``,
``thinking_mode``, ``watermark`` and ``nsfw_checker`` booleans.
"""

from __future__ import annotations

from typing import Any

from kierouter import (
    Adaptation,
    Capabilities,
    ImageRequest,
    MarketProvider,
    ModelCard,
    Pricing,
    ValidationError,
    hookimpl,
)
from kierouter.hookspecs import RegisterModel
from kierouter.provider import check_choice, check_max_len, model_options, snap_aspect_ratio

__all__ = ["CARD", "MODEL_ID", "WanProvider", "kierouter_register_models"]

# CHANGE: the model's id on KIE and what it accepts.
MODEL_ID = "wan/2-7-image"
ASPECT_RATIOS = ("1:1", "16:9", "4:3", "21:9", "3:4", "9:16", "8:1", "1:8")
RESOLUTIONS = ("1K", "2K")
MAX_REFERENCE_IMAGES = 9
MAX_IMAGES = 4
#: Boolean switches passed through from ``options``; KIE's own client sends them all as false.
SWITCHES = ("enable_sequential", "thinking_mode", "watermark", "nsfw_checker")

# CHANGE: what the router knows before calling the model. Prices are credits (1 credit ≈ $0.005);
# these are estimates, overridable in the user's kierouter.toml ([prices."wan/2-7-image"]).
CARD = ModelCard(
    id=MODEL_ID,
    family="wan",
    task_kinds=("generate", "edit"),
    pricing=Pricing(credits=5),
    latency_p50=13,
    latency_p90=30,
    quality=8.0,
    capabilities=Capabilities(
        aspect_ratios=ASPECT_RATIOS,
        resolutions=RESOLUTIONS,
        max_images=MAX_IMAGES,
        max_reference_images=MAX_REFERENCE_IMAGES,
        max_prompt_chars=5000,
        seed=True,
    ),
    strengths=("fast", "chinese"),
    languages=("en", "zh"),
    success_rate=0.9,
    title="Wan 2.7 Image",
    description="Alibaba's Wan 2.7 image model: text-to-image, or edits with up to 9 references.",
)


class WanProvider(MarketProvider):
    """Translates a canonical request into ``wan/2-7-image``'s ``input``.

    :class:`~kierouter.MarketProvider` does the rest: the ``{"model", "callBackUrl", "input"}``
    body, the status reads and the callbacks, which are the same for every Market model.
    """

    # CHANGE: the translation. Validate everything before returning: a ValidationError here
    # makes the router skip this model without sending anything.
    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        options = model_options(card, request)
        unknown = sorted(set(options) - set(SWITCHES))
        if unknown:
            raise ValidationError(
                f"options.{unknown[0]}",
                "is not a parameter of this model",
                allowed=SWITCHES,
                model=card.id,
            )
        if request.kind not in card.task_kinds:
            raise ValidationError("task", f"{card.id} cannot {request.kind}", model=card.id)
        if len(request.images) > MAX_REFERENCE_IMAGES:
            raise ValidationError(
                "images", f"at most {MAX_REFERENCE_IMAGES} reference images", model=card.id
            )
        if not 1 <= request.count <= MAX_IMAGES:
            raise ValidationError(
                "count", f"{request.count} is out of range 1..{MAX_IMAGES}", model=card.id
            )
        ratio, snapped = snap_aspect_ratio(request.aspect_ratio, ASPECT_RATIOS, default="1:1")
        fields: dict[str, Any] = {
            "prompt": check_max_len("prompt", request.prompt, 5000, model=card.id),
            "n": request.count,
            "resolution": check_choice(
                "resolution", request.resolution or "2K", RESOLUTIONS, model=card.id
            ),
            "aspect_ratio": ratio,
        }
        if request.images:
            fields["input_urls"] = list(request.images)
        for name in SWITCHES:
            value = options.get(name, False)
            if not isinstance(value, bool):
                raise ValidationError(f"options.{name}", "must be true or false", model=card.id)
            fields[name] = value
        if seed is not None:
            fields["seed"] = seed
        return fields, [snapped] if snapped else [], seed is not None


# CHANGE: register each model with its provider (one provider object may serve several cards).
@hookimpl
def kierouter_register_models(register: RegisterModel) -> None:
    """Register Wan 2.7 Image."""
    register(CARD, WanProvider())
