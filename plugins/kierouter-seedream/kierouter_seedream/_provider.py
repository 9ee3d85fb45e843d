"""Translate a canonical :class:`~kierouter.ImageRequest` into a Seedream Market ``input``.

Two shapes exist (KIE-API.md §5):

* **v4** (``bytedance/seedream-v4-*``): ``image_size`` names (``square_hd``, ``landscape_16_9``,
  ...), ``image_resolution`` 1K/2K/4K, ``max_images`` 1–6, ``seed``.
* **4.5 and 5 Lite** (``seedream/*``): ``aspect_ratio`` strings and ``quality`` basic|high,
  which KIE requires on every call; no seed.

Every model also takes ``nsfw_checker`` (sent as ``false`` by default, as the recorded traffic
does) and, for edit models, ``image_urls``. No Seedream model has ``num_inference_steps``.
Everything is checked before a request leaves: a bad request raises
:class:`~kierouter.ValidationError` naming the field and what it allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kierouter import Adaptation, ImageRequest, MarketProvider, ModelCard, ValidationError
from kierouter.provider import (
    RESOLUTIONS,
    check_bool,
    check_choice,
    check_count,
    check_mask,
    check_options,
    check_prompt,
    check_reference_images,
    check_resolution,
    check_task_kind,
    snap_aspect_ratio,
)

from ._cards import (
    EDIT_PARTNER,
    SEEDREAM_5_LITE_I2I,
    SEEDREAM_5_LITE_T2I,
    SEEDREAM_ASPECT_RATIOS,
    SEEDREAM_V4_EDIT,
    SEEDREAM_V4_T2I,
)

__all__ = ["MODEL_OPTIONS", "V4_IMAGE_SIZES", "V4_SIZE_FOR_RATIO", "SeedreamProvider"]

#: v4's ``image_size`` for each aspect ratio (``square`` is reachable only as an explicit option).
V4_SIZE_FOR_RATIO: dict[str, str] = {
    "1:1": "square_hd",
    "4:3": "landscape_4_3",
    "3:4": "portrait_4_3",
    "3:2": "landscape_3_2",
    "2:3": "portrait_3_2",
    "16:9": "landscape_16_9",
    "9:16": "portrait_16_9",
    "21:9": "landscape_21_9",
}
#: Every ``image_size`` v4 accepts.
V4_IMAGE_SIZES = (
    "square", "square_hd", "portrait_4_3", "portrait_3_2", "portrait_16_9",
    "landscape_4_3", "landscape_3_2", "landscape_16_9", "landscape_21_9",
)  # fmt: skip

_V4 = (SEEDREAM_V4_T2I.id, SEEDREAM_V4_EDIT.id)
_V4_OPTIONS = ("image_size", "image_resolution", "nsfw_checker")
_QUALITY_OPTIONS = ("aspect_ratio", "quality", "nsfw_checker")

#: Model-specific fields a request may set through ``options`` (keyed by model id or family).
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    model: _V4_OPTIONS if model in _V4 else _QUALITY_OPTIONS for model in EDIT_PARTNER
}
_FAMILY_OPTIONS = tuple(sorted({key for keys in MODEL_OPTIONS.values() for key in keys}))

_5_LITE = (SEEDREAM_5_LITE_T2I.id, SEEDREAM_5_LITE_I2I.id)
_MIN_PROMPT = 3  # 5 Lite refuses shorter prompts (KIE-API.md §5)


class SeedreamProvider(MarketProvider):
    """The Market provider for every Seedream model; the card's id picks the input shape."""

    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        """Return ``(input, adaptations, seed_sent)`` for ``card``; raise ValidationError early."""
        options = check_options(
            card,
            request,
            MODEL_OPTIONS[card.id],
            family_allowed=_FAMILY_OPTIONS,
            family_name="Seedream",
        )
        _check_request(card, request)
        adaptations: list[Adaptation] = []
        if request.negative_prompt:
            adaptations.append(
                Adaptation(
                    "negative_prompt",
                    request.negative_prompt,
                    None,
                    "Seedream has no negative prompt; not sent",
                )
            )
        fields: dict[str, Any] = {"prompt": request.prompt}
        if "edit" in card.task_kinds:
            fields["image_urls"] = list(request.images)
        if card.id in _V4:
            seed_sent = _v4_fields(card, request, options, seed, fields, adaptations)
        else:
            _quality_fields(card, request, options, fields, adaptations)
            seed_sent = False
        nsfw = options.get("nsfw_checker", False)
        fields["nsfw_checker"] = check_bool("options.nsfw_checker", nsfw, model=card.id)
        return fields, adaptations, seed_sent


def _v4_fields(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    seed: int | None,
    fields: dict[str, Any],
    adaptations: list[Adaptation],
) -> bool:
    if "image_size" in options:
        fields["image_size"] = check_choice(
            "options.image_size", options["image_size"], V4_IMAGE_SIZES, model=card.id
        )
    else:
        ratio, adaptation = snap_aspect_ratio(
            request.aspect_ratio, SEEDREAM_ASPECT_RATIOS, default="1:1"
        )
        fields["image_size"] = V4_SIZE_FOR_RATIO[ratio]
        if adaptation is not None:
            adaptations.append(adaptation)
    if "image_resolution" in options:
        fields["image_resolution"] = check_choice(
            "options.image_resolution", options["image_resolution"], RESOLUTIONS, model=card.id
        )
    else:
        fields["image_resolution"] = request.resolution or "1K"
    fields["max_images"] = request.count
    if seed is None:
        return False
    fields["seed"] = seed
    return True


def _quality_fields(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    fields: dict[str, Any],
    adaptations: list[Adaptation],
) -> None:
    if "aspect_ratio" in options:
        fields["aspect_ratio"] = check_choice(
            "options.aspect_ratio", options["aspect_ratio"], SEEDREAM_ASPECT_RATIOS, model=card.id
        )
    else:
        ratio, adaptation = snap_aspect_ratio(
            request.aspect_ratio, SEEDREAM_ASPECT_RATIOS, default="1:1"
        )
        fields["aspect_ratio"] = ratio
        if adaptation is not None:
            adaptations.append(adaptation)
    # KIE fails the task ("This field is required") without quality, so it is always sent
    if "quality" in options:
        fields["quality"] = check_choice(
            "options.quality", options["quality"], ("basic", "high"), model=card.id
        )
        return
    high_tier = "3K" if card.id in _5_LITE else "4K"
    wanted = request.resolution
    if wanted == "4K":
        fields["quality"] = "high"
        if high_tier != "4K":
            adaptations.append(
                Adaptation("resolution", "4K", high_tier, "highest tier (quality=high) is 3K")
            )
        return
    fields["quality"] = "basic"
    if wanted == "1K":
        adaptations.append(
            Adaptation("resolution", "1K", "2K", "lowest tier (quality=basic) is 2K")
        )


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what this model cannot do, naming the field and what it allows."""
    partner = EDIT_PARTNER[card.id]
    check_task_kind(
        card,
        request,
        hints={
            "edit": f"{card.id} cannot edit images; use {partner}",
            "generate": f"{card.id} edits reference images; for text-to-image use {partner}",
        },
        fallback=f"Seedream models cannot {request.kind}",
    )
    check_resolution(card, request, RESOLUTIONS)  # any tier: what it lacks is adapted
    check_reference_images(card, request, suggestion=partner)
    check_mask(card, request)
    check_count(card, request)
    check_prompt(card, request)
    if card.id in _5_LITE and len(request.prompt) < _MIN_PROMPT:
        raise ValidationError(
            "prompt",
            f"is {len(request.prompt)} characters, the minimum is {_MIN_PROMPT}",
            model=card.id,
        )
