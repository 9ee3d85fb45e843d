"""Translate a canonical :class:`~kierouter.ImageRequest` into a Nano Banana Market ``input``.

Two shapes exist (KIE-API.md §6):

* ``google/nano-banana`` / ``google/nano-banana-edit``: ``prompt`` (≤5000), ``aspect_ratio``,
  ``output_format`` ``png|jpeg``; the edit model takes ``image_urls`` (1–10, required). There is
  no resolution setting.
* ``nano-banana-pro`` / ``nano-banana-2``: ``prompt``, ``image_input`` (≤8 / ≤14 reference
  images, for generation and editing alike), ``aspect_ratio``, ``resolution`` 1K/2K/4K,
  ``output_format`` ``png|jpg``.

Only the prompt is always sent; every other field is sent only when the request sets it, so that
KIE's defaults apply otherwise. This is exactly what the recorded (accepted) Pro and 2 bodies do:
``{"model": "nano-banana-pro", "input": {"prompt": "..."}}``. No model takes a seed.

The aspect field of ``google/nano-banana`` is ``aspect_ratio`` (current docs); the older
``image_size`` is deprecated and is sent only when given as an explicit option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kierouter import Adaptation, ImageRequest, MarketProvider, ModelCard
from kierouter.provider import (
    RESOLUTIONS,
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

from ._cards import NANO_BANANA, NANO_BANANA_2, NANO_BANANA_EDIT, NANO_BANANA_PRO

__all__ = ["MODEL_OPTIONS", "OUTPUT_FORMATS", "NanoBananaProvider"]

_GOOGLE = (NANO_BANANA.id, NANO_BANANA_EDIT.id)

#: Model-specific fields a request may set through ``options`` (keyed by model id or family).
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    NANO_BANANA.id: ("aspect_ratio", "image_size", "output_format"),
    NANO_BANANA_EDIT.id: ("aspect_ratio", "image_size", "output_format"),
    NANO_BANANA_PRO.id: ("aspect_ratio", "resolution", "output_format"),
    NANO_BANANA_2.id: ("aspect_ratio", "resolution", "output_format"),
}
_FAMILY_OPTIONS = tuple(sorted({key for keys in MODEL_OPTIONS.values() for key in keys}))

#: The ``output_format`` spelling each model wants; ``jpg`` and ``jpeg`` are accepted for all.
OUTPUT_FORMATS: dict[str, dict[str, str]] = {
    NANO_BANANA.id: {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"},
    NANO_BANANA_EDIT.id: {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"},
    NANO_BANANA_PRO.id: {"png": "png", "jpg": "jpg", "jpeg": "jpg"},
    NANO_BANANA_2.id: {"png": "png", "jpg": "jpg", "jpeg": "jpg"},
}

# where reference images go
_IMAGE_FIELD = {
    NANO_BANANA_EDIT.id: "image_urls",
    NANO_BANANA_PRO.id: "image_input",
    NANO_BANANA_2.id: "image_input",
}


class NanoBananaProvider(MarketProvider):
    """The Market provider for every Nano Banana model; the card's id picks the input shape."""

    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        """Return ``(input, adaptations, False)`` for ``card``; raise ValidationError early."""
        options = check_options(
            card,
            request,
            MODEL_OPTIONS[card.id],
            family_allowed=_FAMILY_OPTIONS,
            family_name="Nano Banana",
        )
        _check_request(card, request)
        adaptations: list[Adaptation] = []
        if request.negative_prompt:
            adaptations.append(
                Adaptation(
                    "negative_prompt",
                    request.negative_prompt,
                    None,
                    "Nano Banana has no negative prompt; not sent",
                )
            )
        fields: dict[str, Any] = {"prompt": request.prompt}
        if request.images:
            fields[_IMAGE_FIELD[card.id]] = list(request.images)
        ratio = _aspect_ratio(card, request, options, adaptations)
        if ratio is not None:
            fields["aspect_ratio"] = ratio
        if "image_size" in options:
            fields["image_size"] = check_choice(
                "options.image_size",
                options["image_size"],
                card.capabilities.aspect_ratios,
                model=card.id,
            )
        resolution = _resolution(card, request, options, adaptations)
        if resolution is not None:
            fields["resolution"] = resolution
        if "output_format" in options:
            spelling = OUTPUT_FORMATS[card.id]
            value = check_choice(
                "options.output_format", options["output_format"], spelling, model=card.id
            )
            fields["output_format"] = spelling[value]
        return fields, adaptations, False


def _aspect_ratio(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    adaptations: list[Adaptation],
) -> str | None:
    supported = card.capabilities.aspect_ratios
    if "aspect_ratio" in options:
        value: str = check_choice(
            "options.aspect_ratio", options["aspect_ratio"], supported, model=card.id
        )
        return value
    if request.aspect_ratio is None:
        return None  # KIE's default (1:1, or auto on nano-banana-2)
    ratio, adaptation = snap_aspect_ratio(request.aspect_ratio, supported, default="auto")
    if adaptation is not None:
        adaptations.append(adaptation)
    return ratio


def _resolution(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    adaptations: list[Adaptation],
) -> str | None:
    if card.id in _GOOGLE:
        if request.resolution not in (None, "1K"):
            adaptations.append(
                Adaptation(
                    "resolution",
                    request.resolution,
                    "1K",
                    f"{card.id} has no resolution setting; it renders about 1K",
                )
            )
        return None
    if "resolution" in options:
        value: str = check_choice(
            "options.resolution", options["resolution"], RESOLUTIONS, model=card.id
        )
        return value
    return request.resolution  # None leaves KIE's default, 1K


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what this model cannot do, naming the field and what it allows."""
    check_task_kind(
        card,
        request,
        hints={
            "edit": f"{card.id} cannot edit images; use {NANO_BANANA_EDIT.id}, "
            f"{NANO_BANANA_2.id} or {NANO_BANANA_PRO.id}",
            "generate": f"{card.id} only edits reference images; for text-to-image use "
            f"{NANO_BANANA.id}, {NANO_BANANA_2.id} or {NANO_BANANA_PRO.id}",
        },
        fallback=f"Nano Banana models cannot {request.kind}",
    )
    check_resolution(card, request, RESOLUTIONS)  # any tier: what it lacks is adapted
    check_reference_images(card, request, suggestion=NANO_BANANA_EDIT.id)
    check_mask(card, request)
    check_count(card, request)
    check_prompt(card, request)
