"""Checks a model card or policy before the planner may see it.

A :class:`~kierouter.ModelCard` is a frozen struct, but its constructor checks no types and no
ranges: a plugin can build one with ``latency_p50="13s"``, ``quality=15`` or
``success_rate=1.7``, and the planner would then raise a bare ``TypeError`` or produce a
P(success) above 1 for every user. :func:`check_card` refuses such a card with a message naming
each bad field and what it may be, and returns a copy the registry owns (so a plugin that keeps
a reference to its card cannot change what was checked).

The rules (the documented meaning of each field):

==============================  ==================================================================
``id``, ``family``              non-empty, no whitespace, no ``|`` (policies' ladders use it)
``task_kinds``                  at least one of generate, edit, remove-background, upscale; no
                                repeats
``pricing``                     every price finite and ≥ 0; ``by_resolution`` keys 1K/2K/4K;
                                ``images_per_task`` ≥ 1
``latency_p50``/``latency_p90`` finite seconds > 0, p50 ≤ p90
``quality``                     finite, 0 to 10
``success_rate``                finite, above 0 and at most 1
``capabilities``                aspect ratios ``W:H`` or ``auto`` (none for models whose output
                                follows their input); resolutions among 1K/2K/4K;
                                ``max_images`` and ``max_prompt_chars`` ≥ 1;
                                ``max_reference_images`` ≥ 0
``languages``                   at least one lowercase ISO code, or ``*``
``strengths``                   non-empty words
==============================  ==================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from copy import deepcopy
from typing import Any, TypeVar

import msgspec

from ._models import RESOLUTIONS, ModelCard, _ratio_value

__all__ = ["CardError", "check_card", "check_struct"]

_T = TypeVar("_T")
_NAME = re.compile(r"^[^\s|]+$")
_PATH = re.compile(r"\.(\w+)|\[(\d+)\]")


class CardError(ValueError):
    """A card (or policy) that must not be planned with; the message names every bad field."""


def _actual(root: object, path: str) -> Any:
    """The value at a msgspec error path (``$.capabilities.max_images``) inside ``root``."""
    value: Any = root
    for attr, index in _PATH.findall(path):
        try:
            if attr:
                value = value[attr] if isinstance(value, dict) else getattr(value, attr)
            else:
                value = value[int(index)]
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
    return value


def _nonfinite(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield f"{path or 'value'} is {value}, not a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nonfinite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            yield from _nonfinite(item, f"{path}[{n}]")


def check_struct(value: _T, kind: type[_T]) -> _T:
    """A copy of ``value`` the caller owns, with every field's type checked and no NaN or
    infinity.

    Raises :class:`CardError` naming the first wrongly typed field (``latency_p50: expected
    float, got str '13s'``) or every non-finite number.
    """
    if not isinstance(value, kind):
        raise CardError(f"got {type(value).__name__}, not a {kind.__name__}")
    data = msgspec.to_builtins(value, enc_hook=repr)
    try:
        checked = msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        text, _, where = str(exc).partition(" - at `")
        path = where.rstrip("`")
        actual = _actual(value, path)
        text = text.replace("got `str`", f"got `{type(actual).__name__}`")
        field = path.removeprefix("$.") or kind.__name__
        raise CardError(f"{field}: {text[0].lower()}{text[1:]} ({actual!r})") from None
    problems = list(_nonfinite(data))
    if problems:
        raise CardError("; ".join(problems))
    # The checked copy says 60.0 where the plugin wrote 60: when nothing else differs (the
    # right containers and structs), keep the plugin's own values, so that tables, JSON and
    # figures show what it wrote; a deep copy still protects the registry from later changes.
    return deepcopy(value) if checked == value else checked


def _name_problem(field: str, value: str) -> str | None:
    if not _NAME.match(value):
        return f"{field} {value!r} must be non-empty, without spaces or '|'"
    return None


def _card_problems(card: ModelCard) -> Iterator[str | None]:
    yield _name_problem("id", card.id)
    yield _name_problem("family", card.family)
    if not card.task_kinds:
        yield "task_kinds is empty; list what the model does (generate, edit, ...)"
    elif len(set(card.task_kinds)) < len(card.task_kinds):
        yield f"task_kinds {card.task_kinds} repeats a kind"
    pricing = card.pricing
    if pricing.credits < 0:
        yield f"pricing.credits {pricing.credits:g} is negative"
    for table in ("by_resolution", "by_speed"):
        for key, credits in getattr(pricing, table).items():
            if credits < 0:
                yield f"pricing.{table}[{key!r}] {credits:g} is negative"
    if unknown := sorted(set(pricing.by_resolution) - set(RESOLUTIONS)):
        yield f"pricing.by_resolution has {', '.join(unknown)}; tiers are 1K, 2K, 4K"
    if pricing.images_per_task < 1:
        yield f"pricing.images_per_task {pricing.images_per_task} is below 1"
    p50, p90 = card.latency_p50, card.latency_p90
    if p50 <= 0 or p90 <= 0:
        yield f"latency_p50 {p50:g} and latency_p90 {p90:g} must be positive seconds"
    elif p50 > p90:
        yield f"latency_p50 {p50:g} is above latency_p90 {p90:g}"
    if not 0 <= card.quality <= 10:
        yield f"quality {card.quality:g} is outside the 0-10 scale"
    if not 0 < card.success_rate <= 1:
        yield f"success_rate {card.success_rate:g} is not a probability in (0, 1]"
    yield from _capability_problems(card)
    if not card.languages:
        yield "languages is empty; list ISO codes such as 'en', or '*' for any"
    for language in card.languages:
        if language != "*" and (not language.isalpha() or language != language.lower()):
            yield f"languages has {language!r}; use lowercase ISO codes ('zh') or '*'"
    if any(not s.strip() for s in card.strengths):
        yield "strengths has an empty word"


def _capability_problems(card: ModelCard) -> Iterator[str | None]:
    caps = card.capabilities
    for ratio in caps.aspect_ratios:
        if ratio != "auto" and _ratio_value(ratio) is None:
            yield f"capabilities.aspect_ratios has {ratio!r}, which is not W:H or 'auto'"
    if unknown := sorted(set(caps.resolutions) - set(RESOLUTIONS)):
        yield f"capabilities.resolutions has {', '.join(unknown)}; tiers are 1K, 2K, 4K"
    for field in ("max_images", "max_prompt_chars"):
        if getattr(caps, field) < 1:
            yield f"capabilities.{field} {getattr(caps, field)} is below 1"
    if caps.max_reference_images < 0:
        yield f"capabilities.max_reference_images {caps.max_reference_images} is negative"


def check_card(card: ModelCard) -> ModelCard:
    """``card`` as a fresh, checked :class:`~kierouter.ModelCard`; :class:`CardError` naming
    every field that breaks the rules in this module's docstring."""
    checked: ModelCard = check_struct(card, ModelCard)
    problems = [p for p in _card_problems(checked) if p]
    if problems:
        raise CardError("; ".join(problems))
    return checked
