"""The open catalogue: Market models the emulator does not ship, declared in a scenario.

A plugin author states KIE's documented rules for a model once, and the emulator serves it like
a built-in Market model (validation with KIE's 422, PNGs, charges, callbacks, faults)::

    [market_models."acme/imagine-1"]
    family = "acme"
    price = 0.5               # credits charged on success, per image (price_per = "task": per task)
    latency = [5, 10]         # p50, p90, emulated seconds
    images = 1                # results per task; or the name of the input field giving the count
    required = ["prompt"]
    [market_models."acme/imagine-1".enums]
    aspect_ratio = ["1:1", "16:9"]
    [market_models."acme/imagine-1".ranges]
    n = [1, 4]
    [market_models."acme/imagine-1".max_length]
    prompt = 2000
    [market_models."acme/imagine-1".price_by_resolution]
    "2K" = 1.0

Only ``price`` and ``latency`` are required; ``family`` defaults to the id's part before ``/``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kierouter._errors import ConfigurationError

from ._catalog import CATALOG
from ._validation import F

__all__ = ["COUNT_FIELDS", "MARKET_MODEL_KEYS", "MarketModel", "parse_market_models"]

MARKET_MODEL_KEYS = (
    "family",
    "price",
    "price_per",
    "price_by_resolution",
    "latency",
    "images",
    "required",
    "enums",
    "ranges",
    "max_length",
)
#: Input fields that set how many images a task returns when ``images`` is a number.
COUNT_FIELDS = ("n", "num_images", "max_images")
_NUMBER = (int, float)


@dataclass(frozen=True)
class MarketModel:
    """One declared Market model. Strictly private to :mod:`kierouter.sim`."""

    id: str
    family: str
    price: float
    p50: float
    p90: float
    price_per: str = "image"
    price_by_resolution: dict[str, float] = field(default_factory=dict)
    images: int | str = 1
    rules: dict[str, F] = field(default_factory=dict)

    def count(self, fields: Mapping[str, Any]) -> int:
        """How many images a task with ``input`` ``fields`` returns."""
        names = (self.images,) if isinstance(self.images, str) else COUNT_FIELDS
        for name in names:
            value = fields.get(name)
            if isinstance(value, bool) or value is None:
                continue
            try:
                return max(1, int(value))
            except (TypeError, ValueError):
                continue
        return self.images if isinstance(self.images, int) else 1

    def price_for(self, tier: str | None, count: int) -> float:
        """Credits for one task of ``count`` images at resolution ``tier``."""
        unit = self.price_by_resolution.get(tier or "", self.price)
        return unit * (1 if self.price_per == "task" else count)


def _fail(where: str, text: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: {text}")


def _number(value: Any, where: str, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or not math.isfinite(value):
        raise _fail(where, f"{name} must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise _fail(where, f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "must be a table")
    return value


def _rules(table: dict[str, Any], where: str) -> dict[str, F]:
    """The field rules of ``required``, ``enums``, ``ranges`` and ``max_length``."""
    required = table.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) and n for n in required):
        raise _fail(where, "required must be a list of input field names")
    enums = _table(table.get("enums", {}), f"{where}.enums")
    ranges = _table(table.get("ranges", {}), f"{where}.ranges")
    lengths = _table(table.get("max_length", {}), f"{where}.max_length")
    for name in set(ranges) & set(lengths):
        raise _fail(where, f"field {name!r} has both a range (a number) and a max_length (text)")
    rules: dict[str, F] = {}
    for name in dict.fromkeys([*required, *enums, *ranges, *lengths]):
        choices = enums.get(name)
        if choices is not None and (not isinstance(choices, list) or not choices):
            raise _fail(f"{where}.enums", f"{name} must be a non-empty list of allowed values")
        low = high = None
        if name in ranges:
            bounds = ranges[name]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise _fail(f"{where}.ranges", f"{name} must be [low, high]")
            low, high = (_number(b, f"{where}.ranges", name) for b in bounds)
            if low > high:
                raise _fail(f"{where}.ranges", f"{name}: low {low:g} is above high {high:g}")
        max_len = None
        if name in lengths:
            max_len = int(_number(lengths[name], f"{where}.max_length", name, positive=True))
        kind = "num" if name in ranges else "str" if name in lengths else "any"
        rules[name] = F(
            kind,
            required=name in required,
            choices=tuple(choices) if choices is not None else None,
            lo=low,
            hi=high,
            max_len=max_len,
        )
    return rules


def _model(model_id: str, table: dict[str, Any], where: str) -> MarketModel:
    for key in table:
        if key not in MARKET_MODEL_KEYS:
            allowed = ", ".join(MARKET_MODEL_KEYS)
            raise _fail(where, f"unknown key {key!r}; allowed keys: {allowed}")
    for key in ("price", "latency"):
        if key not in table:
            raise _fail(where, f"{key} is required")
    family = table.get("family", model_id.split("/", 1)[0])
    if not isinstance(family, str) or not family:
        raise _fail(where, "family must be a non-empty string")
    latency = table["latency"]
    if not isinstance(latency, list) or len(latency) != 2:
        raise _fail(where, "latency must be [p50, p90] in seconds")
    p50, p90 = (_number(v, where, "latency", positive=True) for v in latency)
    if p90 < p50:
        raise _fail(where, f"latency p90 {p90:g} is below p50 {p50:g}")
    images = table.get("images", 1)
    if isinstance(images, bool) or not isinstance(images, int | str) or images in (0, ""):
        raise _fail(where, "images must be a count (>= 1) or the name of the count field")
    if isinstance(images, int) and images < 1:
        raise _fail(where, f"images must be at least 1, got {images}")
    price_per = table.get("price_per", "image")
    if price_per not in ("image", "task"):
        raise _fail(where, f"price_per must be 'image' or 'task', got {price_per!r}")
    tiers = _table(table.get("price_by_resolution", {}), f"{where}.price_by_resolution")
    return MarketModel(
        id=model_id,
        family=family,
        price=_number(table["price"], where, "price"),
        p50=p50,
        p90=p90,
        price_per=price_per,
        price_by_resolution={
            str(tier): _number(v, f"{where}.price_by_resolution", str(tier))
            for tier, v in tiers.items()
        },
        images=images,
        rules=_rules(table, where),
    )


def parse_market_models(value: Any, source: str) -> dict[str, MarketModel]:
    """A scenario's ``[market_models]`` tables, checked; :class:`ConfigurationError` naming the
    model and key for anything wrong."""
    models: dict[str, MarketModel] = {}
    for model_id, table in _table(value, f"{source} [market_models]").items():
        where = f'{source} [market_models."{model_id}"]'
        if not model_id or model_id != model_id.strip():
            raise _fail(where, "the model id must be non-empty, without surrounding spaces")
        if model_id in CATALOG:
            raise _fail(
                where,
                f"{model_id!r} is built into the emulator; change its behaviour under "
                f'[models."{model_id}"] instead',
            )
        models[model_id] = _model(model_id, _table(table, where), where)
    return models
