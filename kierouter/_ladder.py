"""A minimal ladder planner the router uses only while :mod:`kierouter.policy` has no ``plan``.

The policy engine (``kierouter.policy.plan``, ``resolve_policy``, ``apply_policy_options``) is
built separately; until it is installed, a router still runs: the policy's ladder is followed rung
by rung, cheapest model first within a rung, honouring the task kind, ``allow``/``deny``,
``max_credits`` and ``max_steps``. Strictly private; it has none of the engine's objectives,
intents or learned success rates.
"""

from __future__ import annotations

from typing import Any

from ._errors import ConfigurationError
from ._models import ImageRequest, ModelCard
from .policy._types import Dropped, Plan, PlanStep, Policy

__all__ = ["apply_policy_options", "plan", "resolve_policy"]


def resolve_policy(policy: str | Policy, *, registry: Any = None, config: Any = None) -> Policy:
    """A :class:`Policy` as given, one a plugin registered, or a default-ladder policy by name."""
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, str) or not policy:
        raise ConfigurationError(f"a policy is a name or a Policy, not {policy!r}")
    registered = getattr(registry, "policies", {}) or {}
    found = registered.get(policy)
    return found if isinstance(found, Policy) else Policy(name=policy)


def apply_policy_options(request: ImageRequest, policy: Policy) -> ImageRequest:
    """Merge the policy's default model options under the request's own."""
    if not policy.options:
        return request
    import msgspec

    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in policy.options.items()}
    for key, values in request.options.items():
        merged[key] = {**merged.get(key, {}), **values}
    return msgspec.structs.replace(request, options=merged)


def _allowed(card: ModelCard, names: tuple[str, ...]) -> bool:
    return card.id in names or card.family in names


def plan(
    request: ImageRequest, cards: dict[str, ModelCard], policy: Policy, stats: Any = None
) -> Plan:
    """Follow the ladder: every rung's eligible models, cheapest first, up to ``max_steps``."""
    limits = policy.constraints
    steps: list[PlanStep] = []
    dropped: list[Dropped] = []
    placed: set[str] = set()
    for rung in policy.ladder:
        families = rung.split("|")
        rung_cards = sorted(
            (c for c in cards.values() if c.family in families),
            key=lambda c: (c.credits_for(request), c.id),
        )
        for card in rung_cards:
            reason = None
            if request.kind not in card.task_kinds:
                reason = f"does not do {request.kind}"
            elif limits.allow and not _allowed(card, limits.allow):
                reason = "not in the policy's allow list"
            elif _allowed(card, limits.deny):
                reason = "in the policy's deny list"
            elif limits.max_credits is not None and card.credits_for(request) > limits.max_credits:
                reason = f"costs more than {limits.max_credits:g} credits"
            elif len(steps) >= policy.max_steps:
                reason = f"beyond max_steps ({policy.max_steps})"
            if reason is not None:
                dropped.append(Dropped(model=card.id, reason=reason))
                continue
            placed.add(card.id)
            steps.append(
                PlanStep(
                    model=card.id,
                    family=card.family,
                    credits=card.credits_for(request),
                    latency_p50=card.latency_p50,
                    quality=card.quality,
                    p_success=card.success_rate,
                    reason=f"ladder rung {rung!r}",
                )
            )
    for card in cards.values():
        if card.id not in placed and all(d.model != card.id for d in dropped):
            dropped.append(Dropped(model=card.id, reason="family not on the ladder"))
    expected, miss = 0.0, 1.0
    for step in steps:
        expected += step.credits * miss
        miss *= 1 - step.p_success
    return Plan(
        policy=policy.name,
        steps=tuple(steps),
        dropped=tuple(dropped),
        expected_credits=expected,
        p_success=1 - miss if steps else 0.0,
        worst_case_credits=sum(s.credits for s in steps),
    )
