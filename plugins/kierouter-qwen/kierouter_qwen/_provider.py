"""Translate a canonical :class:`~kierouter.ImageRequest` into a Qwen Market ``input``.

Two generations with different shapes (KIE-API.md §7):

* **Qwen** (``qwen/text-to-image``, ``qwen/image-to-image``, ``qwen/image-edit``): ``image_size``
  as names (``square_hd``, ``landscape_16_9``, ...; image-to-image has none and keeps the input's
  shape), ``negative_prompt`` (≤500), ``seed``, and the tuning fields ``num_inference_steps``
  (2–250, but 2–49 on image-edit), ``guidance_scale`` (0–20), ``acceleration``
  (``none|regular|high``), ``enable_safety_checker``, ``output_format`` (``png|jpeg``). The
  reference image goes in ``image_url`` as a single string; image-to-image adds ``strength``
  (0–1); image-edit returns 1–4 images, asked for with ``num_images`` **as a string**.
* **Qwen 2** (``qwen2/text-to-image``, ``qwen2/image-edit``): ``image_size`` as **ratio strings**
  (``16:9``), ``seed``, ``output_format``; prompts ≤800. ``qwen2/image-edit`` takes ``image_url``
  as a **one-element array**, as the recorded (accepted) request sent it; the docs say a string.

Only what the request sets is sent, so KIE's defaults apply otherwise: the recorded Qwen 2
bodies are exactly ``{"prompt", "image_size"}`` and ``{"prompt", "image_url", "image_size",
"output_format"}``. Everything is checked before a request leaves: a bad request raises
:class:`~kierouter.ValidationError` naming the field and what it allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kierouter import Adaptation, ImageRequest, MarketProvider, ModelCard
from kierouter.provider import (
    RESOLUTIONS,
    check_bool,
    check_choice,
    check_count,
    check_mask,
    check_max_len,
    check_options,
    check_prompt,
    check_range,
    check_reference_images,
    check_resolution,
    check_task_kind,
    snap_aspect_ratio,
)

from ._cards import (
    QWEN2_EDIT,
    QWEN2_EDIT_RATIOS,
    QWEN2_T2I,
    QWEN2_T2I_RATIOS,
    QWEN_EDIT,
    QWEN_I2I,
    QWEN_SIZE_FOR_RATIO,
    QWEN_T2I,
)

__all__ = [
    "ACCELERATIONS",
    "GUIDANCE_RANGE",
    "MODEL_OPTIONS",
    "QWEN_IMAGE_SIZES",
    "STEP_RANGES",
    "QwenProvider",
]

#: Every ``image_size`` name ``qwen/text-to-image`` and ``qwen/image-edit`` accept.
QWEN_IMAGE_SIZES = (
    "square", "square_hd", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9",
)  # fmt: skip
#: ``acceleration`` values (the sheet's ``acceleration_level`` does not exist).
ACCELERATIONS = ("none", "regular", "high")
#: ``num_inference_steps`` range of each Qwen (v1) model.
STEP_RANGES: dict[str, tuple[int, int]] = {
    QWEN_T2I.id: (2, 250),
    QWEN_I2I.id: (2, 250),
    QWEN_EDIT.id: (2, 49),
}
#: ``guidance_scale`` range of the Qwen (v1) models.
GUIDANCE_RANGE = (0.0, 20.0)

_V1 = tuple(STEP_RANGES)
_TUNING = (
    "num_inference_steps", "guidance_scale", "acceleration", "enable_safety_checker",
    "output_format", "nsfw_checker",
)  # fmt: skip

#: Model-specific fields a request may set through ``options`` (keyed by model id or family).
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    QWEN_T2I.id: ("image_size", *_TUNING),
    QWEN_I2I.id: ("strength", *_TUNING),
    QWEN_EDIT.id: ("image_size", *_TUNING),
    QWEN2_T2I.id: ("image_size", "output_format", "nsfw_checker"),
    QWEN2_EDIT.id: ("image_size", "output_format", "nsfw_checker"),
}
_FAMILY_OPTIONS = tuple(sorted({key for keys in MODEL_OPTIONS.values() for key in keys}))

# image_size a model falls back to (KIE's default) when asked for 'auto'
_DEFAULT_RATIO = {
    QWEN_T2I.id: "1:1",
    QWEN_EDIT.id: "4:3",
    QWEN2_T2I.id: "16:9",
    QWEN2_EDIT.id: "16:9",
}
_RATIOS: dict[str, tuple[str, ...]] = {
    QWEN_T2I.id: tuple(QWEN_SIZE_FOR_RATIO),
    QWEN_EDIT.id: tuple(QWEN_SIZE_FOR_RATIO),
    QWEN2_T2I.id: QWEN2_T2I_RATIOS,
    QWEN2_EDIT.id: QWEN2_EDIT_RATIOS,
}
_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}
# an explicit image_size may be spelt either way; it is sent in the model's own spelling
_NAME_SPELLINGS = {
    **{name: name for name in QWEN_IMAGE_SIZES},
    **QWEN_SIZE_FOR_RATIO,
}
_RATIO_FOR_NAME = {name: ratio for ratio, name in QWEN_SIZE_FOR_RATIO.items()}


_NEGATIVE_MAX = 500
# the other task kind's models, named in "cannot edit" / "cannot generate" errors
_PARTNERS = {
    QWEN_T2I.id: f"{QWEN_EDIT.id} or {QWEN_I2I.id}",
    QWEN_I2I.id: QWEN_T2I.id,
    QWEN_EDIT.id: QWEN_T2I.id,
    QWEN2_T2I.id: QWEN2_EDIT.id,
    QWEN2_EDIT.id: QWEN2_T2I.id,
}


class QwenProvider(MarketProvider):
    """The Market provider for every Qwen model; the card's id picks the input shape."""

    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        """Return ``(input, adaptations, seed_sent)`` for ``card``; raise ValidationError early."""
        options = check_options(
            card,
            request,
            MODEL_OPTIONS[card.id],
            family_allowed=_FAMILY_OPTIONS,
            family_name="Qwen",
        )
        _check_request(card, request)
        adaptations: list[Adaptation] = []
        fields: dict[str, Any] = {"prompt": request.prompt}
        if request.images:
            url = request.images[0]
            fields["image_url"] = [url] if card.id == QWEN2_EDIT.id else url
        size = _image_size(card, request, options, adaptations)
        if size is not None:
            fields["image_size"] = size
        if "output_format" in options:
            value = check_choice(
                "options.output_format", options["output_format"], _FORMATS, model=card.id
            )
            fields["output_format"] = _FORMATS[value]
        if request.negative_prompt:
            if card.id in _V1:
                fields["negative_prompt"] = request.negative_prompt
            else:
                adaptations.append(
                    Adaptation(
                        "negative_prompt",
                        request.negative_prompt,
                        None,
                        "Qwen 2 has no negative prompt; not sent",
                    )
                )
        if card.id == QWEN_EDIT.id:
            fields["num_images"] = str(request.count)  # KIE documents it as a string
        if seed is not None:
            fields["seed"] = seed
        if card.id in _V1:
            _tuning_fields(card, options, fields)
        if "nsfw_checker" in options:
            fields["nsfw_checker"] = check_bool(
                "options.nsfw_checker", options["nsfw_checker"], model=card.id
            )
        if request.resolution not in (None, "1K"):
            adaptations.append(
                Adaptation(
                    "resolution",
                    request.resolution,
                    "1K",
                    "Qwen has no resolution setting; it renders about 1K",
                )
            )
        return fields, adaptations, seed is not None


def _image_size(
    card: ModelCard,
    request: ImageRequest,
    options: Mapping[str, Any],
    adaptations: list[Adaptation],
) -> str | None:
    if card.id == QWEN_I2I.id:
        if request.aspect_ratio not in (None, "auto"):
            adaptations.append(
                Adaptation(
                    "aspect_ratio",
                    request.aspect_ratio,
                    None,
                    f"{card.id} has no image_size; the result keeps the input image's shape",
                )
            )
        return None
    named = card.id in _V1
    if "image_size" in options:
        # either spelling is taken, so that one family-wide image_size fits every Qwen model
        spellings = _NAME_SPELLINGS if named else _ratio_spellings(card.id)
        value = check_choice("options.image_size", options["image_size"], spellings, model=card.id)
        return spellings[value]
    if request.aspect_ratio is None:
        return None  # KIE's default: square_hd, landscape_4_3 (image-edit) or 16:9 (Qwen 2)
    ratio, adaptation = snap_aspect_ratio(
        request.aspect_ratio, _RATIOS[card.id], default=_DEFAULT_RATIO[card.id]
    )
    if adaptation is not None:
        adaptations.append(adaptation)
    return QWEN_SIZE_FOR_RATIO[ratio] if named else ratio


def _ratio_spellings(model: str) -> dict[str, str]:
    """A Qwen 2 model's ratios, plus the Qwen names of those ratios, each -> the ratio."""
    ratios = _RATIOS[model]
    names = {name: ratio for name, ratio in _RATIO_FOR_NAME.items() if ratio in ratios}
    return {**{ratio: ratio for ratio in ratios}, **names}


def _tuning_fields(card: ModelCard, options: Mapping[str, Any], fields: dict[str, Any]) -> None:
    """The Qwen (v1) fields only an explicit option sets, in KIE's documented ranges."""
    if "strength" in options:
        fields["strength"] = check_range(
            "options.strength", options["strength"], 0, 1, model=card.id
        )
    if "num_inference_steps" in options:
        low, high = STEP_RANGES[card.id]
        fields["num_inference_steps"] = check_range(
            "options.num_inference_steps",
            options["num_inference_steps"],
            low,
            high,
            model=card.id,
            integer=True,
        )
    if "guidance_scale" in options:
        fields["guidance_scale"] = check_range(
            "options.guidance_scale", options["guidance_scale"], *GUIDANCE_RANGE, model=card.id
        )
    if "acceleration" in options:
        fields["acceleration"] = check_choice(
            "options.acceleration", options["acceleration"], ACCELERATIONS, model=card.id
        )
    if "enable_safety_checker" in options:
        fields["enable_safety_checker"] = check_bool(
            "options.enable_safety_checker", options["enable_safety_checker"], model=card.id
        )


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what this model cannot do, naming the field and what it allows."""
    partner = _PARTNERS[card.id]
    check_task_kind(
        card,
        request,
        hints={
            "edit": f"{card.id} cannot edit images; use {partner}",
            "generate": f"{card.id} edits an input image; for text-to-image use {partner}",
        },
        fallback=f"Qwen models cannot {request.kind}",
    )
    check_resolution(card, request, RESOLUTIONS)  # any tier: what it lacks is adapted
    check_reference_images(card, request, suggestion=partner)
    check_mask(card, request)
    check_count(card, request)
    check_prompt(card, request)
    if request.negative_prompt and card.id in _V1:
        check_max_len("negative_prompt", request.negative_prompt, _NEGATIVE_MAX, model=card.id)
