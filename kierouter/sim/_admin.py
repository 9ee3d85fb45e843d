"""The admin API under ``/_sim/`` (no key; loopback clients only).

* ``GET /_sim/stats`` — counters (see :meth:`kierouter.sim.Emulator.stats`).
* ``GET /_sim/tasks`` — one summary per task: model, state, price, callback URL and job key.
* ``GET /_sim/callbacks`` — every callback POST made: URL, attempt, answer status, body.
* ``GET /_sim/charges`` — credits charged: ``{"total": credits, "tasks": {taskId: credits}}``.
* ``POST /_sim/configure`` — ``{"model": "seedream", "fail_rate": 1.0, ...}`` for one target,
  ``{"models": {"seedream": {...}}}`` for several, and/or emulator settings
  (``time_scale``, ``credits``, ``hmac_key``, ``create_limit``, ``create_window``,
  ``read_limit``, ``result_ttl``, ``visibility_lag``, ``price_multiplier``,
  ``credits_in_status``).
* ``POST /_sim/inject`` — ``{"kind": "http_500", "rate": 0.2, "count": 3, "paths": ["create"],
  "seconds": 35}``; ``{"clear": true}`` removes every fault.
* ``POST /_sim/advance`` — ``{"seconds": 1200}`` jumps the emulated clock.
* ``POST /_sim/reset`` — forget tasks, files, counters, faults and model settings
  (``{"credits": N}`` sets the new balance).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._http import Request, Response, dumps
from ._scenario import DEFAULT_KEYS, MODEL_KEYS
from ._state import check_non_negative

if TYPE_CHECKING:
    from ._app import SimApp

__all__ = ["EMULATOR_SETTINGS", "MODEL_SETTINGS", "apply_settings", "handle"]

#: Settings that may change while the emulator runs (all of a scenario's [defaults] but these).
EMULATOR_SETTINGS = tuple(k for k in DEFAULT_KEYS if k not in ("api_key", "seed"))
MODEL_SETTINGS = MODEL_KEYS


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, dumps(value).encode())


def apply_settings(app: SimApp, settings: dict[str, Any]) -> None:
    """Apply emulator-wide settings; raises ``ValueError`` naming an unknown or bad one."""
    state = app.state
    for name, value in settings.items():
        if name not in EMULATOR_SETTINGS:
            raise ValueError(f"unknown setting {name!r}; one of {', '.join(EMULATOR_SETTINGS)}")
        if name == "time_scale":
            state.set_time_scale(float(value))
        elif name == "credits":
            state.balance = float(value)
        elif name == "hmac_key":
            state.hmac_key = str(value) if value else None
        elif name == "create_limit":
            state.create_limit = int(value)
        elif name == "create_window":
            state.create_window = float(value)
        elif name == "read_limit":
            state.read_limit = float(value) if value else None
        elif name == "result_ttl":
            state.result_ttl = float(value)
        elif name in ("visibility_lag", "price_multiplier"):
            setattr(state, name, check_non_negative(name, value))
        elif name == "credits_in_status":
            state.credits_in_status = bool(value)


async def handle(app: SimApp, request: Request) -> Response:
    """Answer one admin request."""
    state = app.state
    route = (request.method, request.path.rstrip("/"))
    try:
        body = json.loads(request.body) if request.body else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        if route == ("GET", "/_sim/stats"):
            return _json(state.stats())
        if route == ("GET", "/_sim/tasks"):
            return _json(state.task_list())
        if route == ("GET", "/_sim/callbacks"):
            return _json(state.callback_log)
        if route == ("GET", "/_sim/charges"):
            return _json(state.charges())
        if route == ("POST", "/_sim/configure"):
            models = dict(body.pop("models", None) or {})
            target = body.pop("model", None) or body.pop("target", None)
            model_fields = {k: body.pop(k) for k in list(body) if k in MODEL_SETTINGS}
            if target:
                models[str(target)] = {**models.get(str(target), {}), **model_fields}
            elif model_fields:
                raise ValueError("model settings need a 'model' (id, family or '*')")
            apply_settings(app, body)
            for name, settings in models.items():
                state.configure(name, **settings)
            return _json({"ok": True})
        if route == ("POST", "/_sim/inject"):
            if body.get("clear"):
                state.faults.clear()
                return _json({"ok": True})
            kind = body.pop("kind", None)
            if not isinstance(kind, str):
                raise ValueError("'kind' is required")
            unknown = set(body) - {"rate", "count", "paths", "seconds", "after"}
            if unknown:
                raise ValueError(f"unknown fault option {sorted(unknown)[0]!r}")
            state.faults.add(kind, **body)
            return _json({"ok": True})
        if route == ("POST", "/_sim/advance"):
            state.advance(float(body.get("seconds", 0)))
            return _json({"ok": True, "emulated_seconds": round(state.clock.now(), 3)})
        if route == ("POST", "/_sim/reset"):
            state.reset(body.get("credits"))
            return _json({"ok": True})
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"error": f"no admin route {request.method} {request.path}"}, 404)
