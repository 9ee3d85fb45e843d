"""Scenario files: the emulator's settings, per-model behaviour and faults in TOML.

::

    [defaults]                  # any Emulator option: time_scale, credits, hmac_key, api_key,
    time_scale = 100            # create_limit, create_window, read_limit, seed, result_ttl,
    credits = 500               # visibility_lag, price_multiplier, credits_in_status

    [models."seedream"]         # a model id, a family name, or "*"
    latency = [20, 45]          # p50, p90 in emulated seconds
    fail_rate = 0.1
    fail_code = "500"
    fail_stage = "generate"     # or "create" (Flux/MJ successFlag 2, 4o CREATE_TASK_FAILED)
    never_finish_rate = 0.0
    price = 3.5                 # credits per task instead of the catalogue's

    [[faults]]
    kind = "http_500"           # see kierouter.sim.FAULT_KINDS
    rate = 0.2
    paths = ["status"]          # create, status, credit, download, upload, files, any
    count = 3
    seconds = 35                # slow_response only
    after = 0                   # matching requests let through before it may fire

    [market_models."acme/imagine-1"]   # a Market model the emulator does not ship
    price = 0.5                        # see kierouter.sim._open_models
    latency = [5, 10]

Unknown tables and keys are rejected with an error that names them, and so is a ``[models]``
table naming no known model or family. ``docs/emulator.md`` describes each.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kierouter._errors import ConfigurationError

from ._catalog import CATALOG
from ._faults import FAULT_KINDS
from ._open_models import MarketModel, parse_market_models
from ._state import ModelConfig

__all__ = ["DEFAULT_KEYS", "FAULT_KEYS", "MODEL_KEYS", "Scenario", "load_scenario"]

DEFAULT_KEYS = (
    "time_scale",
    "credits",
    "hmac_key",
    "api_key",
    "create_limit",
    "create_window",
    "read_limit",
    "seed",
    "result_ttl",
    "visibility_lag",
    "price_multiplier",
    "credits_in_status",
    "after",
)
MODEL_KEYS = tuple(f.name for f in fields(ModelConfig))
FAULT_KEYS = ("kind", "rate", "count", "paths", "seconds", "after")


@dataclass
class Scenario:
    """Emulator settings, per-model behaviour, faults and declared Market models, as loaded
    from a TOML file or built from the same data as a dict (:meth:`from_dict`)."""

    defaults: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    market_models: dict[str, MarketModel] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "scenario") -> Scenario:
        """Build a scenario from parsed TOML (or the same dict), rejecting unknown tables, keys
        and model names by name (:class:`~kierouter.ConfigurationError`)."""
        _only(data, ("defaults", "models", "faults", "market_models"), source)
        market_models = parse_market_models(data.get("market_models", {}), source)
        known = _targets(market_models)
        defaults = _table(data.get("defaults", {}), f"{source} [defaults]")
        _only(defaults, DEFAULT_KEYS, f"{source} [defaults]")
        models: dict[str, dict[str, Any]] = {}
        for name, settings in _table(data.get("models", {}), f"{source} [models]").items():
            where = f'{source} [models."{name}"]'
            if name not in known:
                raise ConfigurationError(
                    f"{where}: no model or family {name!r} is known; use a built-in model id or "
                    'family, "*", or declare the model under [market_models."…"]'
                )
            table = _table(settings, where)
            _only(table, MODEL_KEYS, where)
            latency = table.get("latency")
            if latency is not None and (
                not isinstance(latency, list)
                or len(latency) != 2
                or not all(isinstance(v, int | float) for v in latency)
            ):
                raise ConfigurationError(f"{where}: latency must be [p50, p90] in seconds")
            models[name] = table
        faults = data.get("faults", [])
        if not isinstance(faults, list):
            raise ConfigurationError(f"{source}: faults must be an array of tables ([[faults]])")
        for n, fault in enumerate(faults):
            where = f"{source} [[faults]] #{n + 1}"
            _only(_table(fault, where), FAULT_KEYS, where)
            if fault.get("kind") not in FAULT_KINDS:
                raise ConfigurationError(
                    f"{where}: kind {fault.get('kind')!r} is not one of {', '.join(FAULT_KINDS)}"
                )
        return cls(dict(defaults), models, [dict(f) for f in faults], market_models)


def _targets(market_models: dict[str, MarketModel]) -> set[str]:
    """Every name a [models] table may use: "*", model ids and families, built-in or declared."""
    known = {"*"}
    known.update(*((m, info.family) for m, info in CATALOG.items()))
    known.update(*((m, spec.family) for m, spec in market_models.items()))
    return known


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a table")
    return value


def _only(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigurationError(
                f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}"
            )


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read a scenario TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read scenario {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"scenario {path} is not valid TOML: {exc}") from None
    return Scenario.from_dict(data, source=str(path))
