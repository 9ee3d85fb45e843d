"""Translate a canonical :class:`~kierouter.ImageRequest` into a Recraft Market ``input``.

Both models take one field (KIE-API.md §8): ``image``, a single URL string. There is no scale
factor, no prompt, no ratio: ``{"model": "recraft/crisp-upscale", "input": {"image": "https://…"}}``.
Canonical fields the models cannot use are reported as adaptations, never sent.
"""

from __future__ import annotations

from typing import Any

from kierouter import Adaptation, ImageRequest, MarketProvider, ModelCard
from kierouter.provider import check_count, check_mask, check_options, check_task_kind

from ._cards import CRISP_UPSCALE, REMOVE_BACKGROUND

__all__ = ["RecraftProvider"]

_OTHER = {REMOVE_BACKGROUND.id: CRISP_UPSCALE.id, CRISP_UPSCALE.id: REMOVE_BACKGROUND.id}
_UTILITIES = ("remove-background", "upscale")


class RecraftProvider(MarketProvider):
    """The Market provider of ``recraft/remove-background`` and ``recraft/crisp-upscale``."""

    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Adaptation], bool]:
        """Return ``({"image": url}, adaptations, False)``; raise ValidationError early."""
        _check_request(card, request)
        adaptations = [
            Adaptation(name, value, None, reason)
            for name, value, reason in (
                (
                    "prompt",
                    request.prompt if request.prompt.strip() else None,
                    "Recraft takes no prompt",
                ),
                ("aspect_ratio", request.aspect_ratio, "the output keeps the input's shape"),
                ("resolution", request.resolution, _resolution_reason(card)),
                ("negative_prompt", request.negative_prompt, "Recraft takes no prompt"),
            )
            if value
        ]
        return {"image": request.images[0]}, adaptations, False


def _resolution_reason(card: ModelCard) -> str:
    if card.id == CRISP_UPSCALE.id:
        return "crisp-upscale has no scale or resolution parameter; the model picks the factor"
    return "the output keeps the input's size"


def _check_request(card: ModelCard, request: ImageRequest) -> None:
    """Refuse what this model cannot do, naming the field and what it allows."""
    check_options(card, request, ())
    check_task_kind(
        card,
        request,
        hints={kind: f"{card.id} cannot {kind}; use {_OTHER[card.id]}" for kind in _UTILITIES},
        fallback=f"{card.id} cannot {request.kind}; Recraft only removes backgrounds and upscales",
    )
    # ImageRequest.validate() already demands exactly one image for these task kinds
    check_mask(card, request)
    check_count(card, request)
