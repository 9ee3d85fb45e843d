"""Fitting a plan to a request's local input files: models whose input limit is below a file's
size are left out before anything is sent. No network."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import msgspec

from ._errors import ValidationError
from ._inputs import check_inputs, has_local_inputs
from .policy import Constraints, Dropped, merge_constraints

if TYPE_CHECKING:
    from ._models import ImageRequest, ModelCard
    from .policy import Plan, Policy

__all__ = ["fit_plan"]


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.3g} MB"


def fit_plan(
    request: ImageRequest,
    policy: Policy,
    cards: Mapping[str, ModelCard],
    plan: Callable[[Policy], Plan],
) -> Plan:
    """The plan for ``request`` made by ``plan(policy)``, with its local input files checked and
    the models they are too big for (``Capabilities.max_image_bytes``) left out.

    Checks the request's local inputs first (:func:`check_input`). When a file is over some
    models' limit, the request is planned again with those models denied, so that models which
    take it move up; each is listed in ``dropped`` with the file's size and its limit. When no
    model that could run the request takes the file, raises :class:`~kierouter.ValidationError`
    naming the field and the file: nothing is sent.
    """
    first = plan(policy)
    images = check_inputs(request) if has_local_inputs(request) else ()
    if not images:
        return first
    biggest = max(images, key=lambda image: image.size)
    small = {
        model: card.capabilities.max_image_bytes
        for model, card in cards.items()
        if card.capabilities.max_image_bytes < biggest.size
    }
    if not any(step.model in small for step in first.steps):
        return first  # every planned model takes it
    denied = Constraints(deny=tuple(small))
    fitted = plan(
        msgspec.structs.replace(policy, constraints=merge_constraints(policy.constraints, denied))
    )
    before = {d.model: d.reason for d in first.dropped}
    too_small = []  # models the file alone keeps out (their reason changed once denied)
    dropped = []
    for entry in fitted.dropped:
        if entry.model in small and entry.reason != before.get(entry.model):
            too_small.append(entry.model)
            reason = (
                f"takes input images up to {_mb(small[entry.model])}; "
                f"{biggest.field} is {_mb(biggest.size)}"
            )
            entry = Dropped(model=entry.model, reason=reason)
        dropped.append(entry)
    if not fitted.steps:
        best = max(too_small, key=small.__getitem__)
        raise ValidationError(
            biggest.field,
            f"{biggest.label} is {_mb(biggest.size)}, over the input limit of every model that "
            f"could run this request (the largest, {best}, takes {_mb(small[best])}); resize "
            "or recompress it",
        )
    return msgspec.structs.replace(fitted, dropped=tuple(dropped))
