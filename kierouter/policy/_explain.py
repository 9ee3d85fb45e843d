"""``explain``: the plan for a request, without a router and without any network call."""

from __future__ import annotations

import math
from typing import Any

from kierouter._errors import ValidationError
from kierouter._models import ImageRequest, ModelCard

from ._learning import OutcomeStats
from ._planner import apply_policy_options, plan
from ._resolve import resolve_policy
from ._types import Plan, Policy

__all__ = ["USD_PER_CREDIT", "explain", "plan_json"]

USD_PER_CREDIT = 0.005
"""1 credit ≈ $0.005 (the quick-reference sheet's cost calculator)."""


def explain(
    request: ImageRequest | str,
    policy: str | Policy = "auto",
    *,
    cards: dict[str, ModelCard] | None = None,
    registry: Any = None,
    config: Any = None,
    stats: OutcomeStats | None = None,
) -> Plan:
    """The ranked plan for ``request`` under ``policy``: every step with its credits, latency,
    quality, probabilities (billed, accepted, reached) and reason, every dropped model with
    why, and the plan's expected credits, expected seconds and probability of success. No
    network call.

    ``cards`` (``{id: ModelCard}``) wins over ``registry``; with neither, installed plugins are
    loaded. ``config`` (from :func:`kierouter._config.load_config`) supplies TOML policies and
    price overrides; ``stats`` learned success rates.
    """
    if isinstance(request, str):
        request = ImageRequest(prompt=request)
    if not isinstance(request, ImageRequest):
        raise ValidationError("request", f"expected an ImageRequest or a prompt, got {request!r}")
    request.validate()
    if cards is None:
        if registry is None:
            from kierouter._plugins import load_registry

            registry = load_registry()
        cards = dict(registry.cards)
        pricing = getattr(config, "pricing", None)
        if pricing:
            import msgspec

            for model_id, price in pricing.items():
                if model_id in cards:
                    cards[model_id] = msgspec.structs.replace(cards[model_id], pricing=price)
    resolved = resolve_policy(policy, registry=registry, config=config)
    request = apply_policy_options(request, resolved)
    return plan(request, cards, resolved, stats=stats)


def plan_json(result: Plan, *, count: int | None = None) -> dict[str, Any]:
    """A plan as the JSON ``kierouter explain --json`` prints.

    ``credits_per_accepted`` is ``null`` when no step can succeed.
    """
    per_image = result.credits_per_accepted
    return {
        "policy": result.policy,
        "intent": list(result.intent),
        "plan": [
            {
                "model": s.model,
                "family": s.family,
                "credits": s.credits,
                "latency_p50": s.latency_p50,
                "latency_mean": round(s.latency_mean, 3),
                "quality": s.quality,
                "p_success": round(s.p_success, 6),
                "p_billed": round(s.p_billed, 6),
                "p_reached": round(s.p_reached, 6),
                "reason": s.reason,
            }
            for s in result.steps
        ],
        "dropped": [{"model": d.model, "reason": d.reason} for d in result.dropped],
        "expected_credits": round(result.expected_credits, 6),
        "expected_usd": round(result.expected_credits * USD_PER_CREDIT, 6),
        "credits_per_accepted": round(per_image, 6) if math.isfinite(per_image) else None,
        "expected_seconds": round(result.expected_seconds, 3),
        "p_success": round(result.p_success, 6),
        "worst_case_credits": result.worst_case_credits,
    }
