"""Expected cost and success of a plan tried in order until one model succeeds.

For steps with credits cᵢ and success probabilities pᵢ, tried in order and stopping at the first
success:

* E[credits] = Σ cᵢ · Π_{j<i} (1 − pⱼ): step i is paid only when every earlier step failed;
* P(success) = 1 − Π (1 − pᵢ): it does not depend on the order;
* worst case = Σ cᵢ: every step is tried and paid.

For a fixed set of models, E[credits] is smallest when the steps are sorted by cᵢ / pᵢ ascending
(swap two neighbours i, i+1: the order is better iff cᵢ·pᵢ₊₁ ≤ cᵢ₊₁·pᵢ), which is what the
``expected-cost`` ordering does; ``tests/test_policy_expected.py`` checks it by brute force.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["cost_ratio", "expected_credits", "p_success", "worst_case_credits"]


def expected_credits(steps: Iterable[tuple[float, float]]) -> float:
    """E[credits] of ``(credits, p_success)`` steps tried in order until one succeeds."""
    total, miss = 0.0, 1.0
    for credits, p in steps:
        total += credits * miss
        miss *= 1.0 - p
    return total


def p_success(steps: Iterable[tuple[float, float]]) -> float:
    """Probability that at least one of the ``(credits, p_success)`` steps succeeds."""
    miss = 1.0
    any_step = False
    for _, p in steps:
        miss *= 1.0 - p
        any_step = True
    return 1.0 - miss if any_step else 0.0


def worst_case_credits(steps: Sequence[tuple[float, float]]) -> float:
    """Credits spent when every step is tried (and paid)."""
    return math.fsum(c for c, _ in steps)


def cost_ratio(credits: float, p: float) -> float:
    """The sort key that minimises E[credits] for a fixed set: credits / p (∞ when p is 0)."""
    return credits / p if p > 0 else math.inf
