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
from kierouter.provider import check_choice, check_max_len, snap_aspect_ratio

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
_RESOLUTIONS = ("1K", "2K", "4K")


class SeedreamProvider(MarketProvider):
    """The Market provider for every Seedream model; the card's id picks the input shape."""

    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        """Return ``(input, adaptations, seed_sent)`` for ``card``; raise ValidationError early."""
        options = _options(card, request)
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
        fields["nsfw_checker"] = _bool_option(card, options, "nsfw_checker", default=False)
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
            "options.image_resolution", options["image_resolution"], _RESOLUTIONS, model=card.id
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


def _options(card: ModelCard, request: ImageRequest) -> dict[str, Any]:
    """The request's options for ``card``: family-wide keys it knows, overlaid by its own.

    A key set for the model itself must be one of its fields; a family-wide key must be a field
    of some Seedream model and is applied only to the models that have it.
    """
    allowed = MODEL_OPTIONS[card.id]
    family = request.options.get(card.family, {})
    own = request.options.get(card.id, {})
    for key in family:
        if key not in _FAMILY_OPTIONS:
            raise ValidationError(
                f"options.{key}",
                f"no Seedream model has an option {key!r}",
                allowed=_FAMILY_OPTIONS,
                model=card.id,
            )
    for key in own:
        if key not in allowed:
            raise ValidationError(
                f"options.{key}", f"{card.id} has no option {key!r}", allowed=allowed, model=card.id
            )
    merged = {key: value for key, value in family.items() if key in allowed}
    merged.update(own)
    return merged


def _bool_option(card: ModelCard, options: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError(
            f"options.{name}", f"{value!r} is not a boolean", allowed=(True, False), model=card.id
        )
    return value


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what this model cannot do, naming the field and what it allows."""
    caps = card.capabilities
    kind = request.kind
    if kind not in card.task_kinds:
        partner = EDIT_PARTNER[card.id]
        hint = {
            "edit": f"{card.id} cannot edit images; use {partner}",
            "generate": f"{card.id} edits reference images; for text-to-image use {partner}",
        }.get(kind, f"Seedream models cannot {kind}")
        raise ValidationError("task", hint, allowed=card.task_kinds, model=card.id)
    if request.resolution is not None:
        check_choice("resolution", request.resolution, _RESOLUTIONS, model=card.id)
    n_images = len(request.images)
    if n_images and not caps.max_reference_images:
        raise ValidationError(
            "images",
            f"{card.id} takes no reference images; use {EDIT_PARTNER[card.id]}",
            allowed=(),
            model=card.id,
        )
    if n_images > caps.max_reference_images:
        raise ValidationError(
            "images",
            f"{n_images} reference images; {card.id} takes at most {caps.max_reference_images}",
            allowed=tuple(range(1, caps.max_reference_images + 1)),
            model=card.id,
        )
    if request.mask is not None:
        raise ValidationError("mask", f"{card.id} has no mask input", allowed=(), model=card.id)
    if not 1 <= request.count <= caps.max_images:
        raise ValidationError(
            "count",
            f"{request.count} images; {card.id} returns 1 to {caps.max_images} a task",
            allowed=tuple(range(1, caps.max_images + 1)),
            model=card.id,
        )
    check_max_len("prompt", request.prompt, caps.max_prompt_chars, model=card.id)
    if card.id in _5_LITE and len(request.prompt) < _MIN_PROMPT:
        raise ValidationError(
            "prompt",
            f"is {len(request.prompt)} characters, the minimum is {_MIN_PROMPT}",
            model=card.id,
        )
