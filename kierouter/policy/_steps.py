"""Planning's last stage: each kept model's rates, the cheapest order's key, the plan's numbers.

The rates are the card's (P(billed) = ``success_rate``, P(accepted | billed) = 1) or learned
from outcomes (:class:`~kierouter.policy.OutcomeStats`); the key and the numbers follow KIE's
billing, derived in :mod:`._expected`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kierouter._models import ImageRequest

from ._expected import order_key
from ._learning import ACCEPT_PRIOR, OutcomeStats
from ._types import Dropped, Plan, PlanStep

if TYPE_CHECKING:
    from ._planner import _Card as Card

__all__ = ["Rates", "build_plan", "cheapest_key", "learned_rates"]

#: per model id: (P(billed), P(accepted | billed), outcomes learned from, tag learned under)
Rates = dict[str, tuple[float, float, int, str]]


def learned_rates(
    kept: list[tuple[Card, int, float]], stats: OutcomeStats | None, intent: Any
) -> Rates:
    """Each kept model's rates: the card's without ``stats``, else learned under the most
    specific of the request's intent tags that has outcomes."""
    if stats is None:
        return {i.id: (i.p_card, ACCEPT_PRIOR, 0, "") for i, _, _ in kept}
    tags = (*reversed(intent), "*")
    return {i.id: stats.rates_by_tags(i.id, i.p_card, tags) for i, _, _ in kept}


def cheapest_key(info: Card, credits: float, rates: Rates) -> tuple[float, float]:
    """The order of least expected credits, then of least expected time among those."""
    billed, accept, _, _ = rates[info.id]
    return order_key(credits, billed, accept, info.mean)


def build_plan(
    request: ImageRequest,
    ranked: list[tuple[Card, int, float]],
    rates: Rates,
    why: dict[str, str],
    name: str,
    dropped: list[Dropped],
    intent: tuple[str, ...],
) -> Plan:
    """The plan's steps and its numbers under KIE's billing (see ``_expected``)."""
    steps = []
    expected = seconds = worst = 0.0
    reach = 1.0
    for info, _, credits in ranked:
        billed, accept, n, tag = rates[info.id]
        p = billed * accept
        extra = ""
        if n:
            extra += (
                f"; learned from {n} outcomes ({tag}): billed {billed:.2f} (card"
                f" {info.p_card:.2f}), accepted {accept:.2f} of those"
            )
        if request.seed is not None and not info.seed:
            extra += "; ignores the seed"
        if request.negative_prompt and not info.negative_prompt:
            extra += "; ignores the negative prompt"
        steps.append(
            PlanStep(
                model=info.id,
                family=info.family,
                credits=credits,
                latency_p50=info.p50,
                quality=info.quality,
                p_success=p,
                reason=why[info.id] + extra,
                p_billed=billed,
                p_reached=reach,
                latency_mean=info.mean,
            )
        )
        expected += credits * billed * reach
        seconds += info.mean * reach
        worst += credits
        reach *= 1.0 - p
    return Plan(
        policy=name,
        steps=tuple(steps),
        dropped=tuple(dropped),
        expected_credits=expected,
        p_success=1.0 - reach if steps else 0.0,
        intent=intent,
        worst_case_credits=worst,
        expected_seconds=seconds,
    )
