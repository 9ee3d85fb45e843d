"""``explain``: the plan for a request with the installed plugins, without a router.

It lives above both the policy engine and the plugin host (it loads plugins when given no cards),
so that :mod:`kierouter.policy` never imports the host that imports it.
"""

from __future__ import annotations

from typing import Any

from ._errors import ValidationError
from ._models import ImageRequest, ModelCard
from .policy import OutcomeStats, Plan, Policy, apply_policy_options, plan, resolve_policy

__all__ = ["explain"]


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
    price overrides; ``stats`` learned billing and acceptance rates.
    """
    if isinstance(request, str):
        request = ImageRequest(prompt=request)
    if not isinstance(request, ImageRequest):
        raise ValidationError("request", f"expected an ImageRequest or a prompt, got {request!r}")
    request.validate()
    if cards is None:
        if registry is None:
            from ._plugins import load_registry

            registry = load_registry()
        cards = dict(registry.cards)
        pricing = getattr(config, "pricing", None)
        if pricing:
            from ._registry import priced

            for model_id, price in pricing.items():
                if model_id in cards:
                    cards[model_id] = priced(cards[model_id], price)
    resolved = resolve_policy(policy, registry=registry, config=config)
    request = apply_policy_options(request, resolved)
    return plan(request, cards, resolved, stats=stats)
