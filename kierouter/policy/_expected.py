"""Expected cost, time and success of a plan tried in order until one model's image is accepted.

**What KIE bills.** A task that fails costs nothing (``creditsConsumed: 0``); a task that produces
an image is billed, whether the image is then accepted or not: a judge may reject it, or the job
may have given up on the task at its deadline (``on_timeout = "escalate"``) and KIE finishes and
bills it later. So one attempt on step i has three outcomes:

=======================  =================  =======  ==========================
outcome                  probability        billed   then
=======================  =================  =======  ==========================
KIE fails the task       1 − bᵢ             no       the ladder moves on
image accepted           bᵢ · aᵢ            yes      the job is done
image not accepted       bᵢ · (1 − aᵢ)      yes      the ladder moves on
=======================  =================  =======  ==========================

with bᵢ = P(billed) = P(KIE produces an image) and aᵢ = P(accepted | produced) (the judge says
yes, in time). The step succeeds with pᵢ = bᵢ·aᵢ and the job reaches step i with probability
Rᵢ = Π_{j<i} (1 − pⱼ). Then, for the steps in order:

* E[credits] = Σ cᵢ · bᵢ · Rᵢ (step i is paid only when it is reached and produces an image);
* P(success) = 1 − Π (1 − pᵢ), whatever the order;
* E[seconds] = Σ Lᵢ · Rᵢ, with Lᵢ the model's mean latency (see :func:`mean_latency`; a failed
  task is assumed to take as long as one that succeeds);
* worst case = Σ cᵢ: every step tried, produced and rejected.

With bᵢ = 1 (every attempt billed) these are the classic formulas: a ``(credits, p)`` pair given
to the functions below means exactly that.

**The cheapest order.** For a fixed set of steps, what minimises the expected credits per
accepted image, E[credits] / P(success), is what minimises E[credits], since P(success) does not
depend on the order. Swap two neighbours i, i+1 reached with probability R: only their own terms
change, from R·(cᵢbᵢ + (1 − pᵢ)·cᵢ₊₁bᵢ₊₁) to R·(cᵢ₊₁bᵢ₊₁ + (1 − pᵢ₊₁)·cᵢbᵢ), and every later
step is reached with the same Π(1 − p) either way. So i goes first iff

    pᵢ₊₁ · cᵢbᵢ ≤ pᵢ · cᵢ₊₁bᵢ₊₁,   i.e.   cᵢbᵢ / pᵢ ≤ cᵢ₊₁bᵢ₊₁ / pᵢ₊₁,

so an order sorted by the key cᵢ·bᵢ / pᵢ is optimal: any order, the optimal one included, sorts
into it by swapping inverted neighbours, and no such swap adds cost. With pᵢ = bᵢ·aᵢ the key is
**cᵢ / aᵢ**: the credits paid per accepted image when only step i is tried. KIE's failure rate
drops out: a failed task costs nothing but time. A step that never yields an accepted image
(pᵢ = 0) goes last (key ∞); one that is never billed either costs nothing anywhere. Among steps
with equal keys every order costs the same, and the same exchange on E[seconds] (key Lᵢ / pᵢ)
puts the fastest per unit of success first: sorting by (cᵢ/aᵢ, Lᵢ/pᵢ) gives the cheapest order
that is also the fastest of the cheapest. ``tests/test_policy_properties.py`` checks all of this
against a brute-force enumeration of every outcome of every order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = [
    "expected_credits",
    "mean_latency",
    "order_key",
    "p_success",
    "worst_case_credits",
]

#: A step: ``(credits, p_success)`` (billed on every attempt) or
#: ``(credits, p_success, p_billed)`` (billed only when KIE produces an image).
Step = tuple[float, float] | tuple[float, float, float]

# The standard normal's 90th percentile: a log-normal's sigma is ln(p90 / p50) / _Z90
# (the same fit the polling schedule and the emulator use).
_Z90 = 1.2815515655446004


def _billed(step: Step) -> float:
    return step[2] if len(step) == 3 else 1.0


def expected_credits(steps: Iterable[Step]) -> float:
    """E[credits] of steps tried in order until one's image is accepted: Σ cᵢ·bᵢ·Π_{j<i}(1−pⱼ).

    Each step is ``(credits, p_success)``, billed on every attempt, or ``(credits, p_success,
    p_billed)``, billed only when KIE produces an image (KIE's rule: a failed task is free).
    """
    total, reach = 0.0, 1.0
    for step in steps:
        total += step[0] * _billed(step) * reach
        reach *= 1.0 - step[1]
    return total


def p_success(steps: Iterable[Step]) -> float:
    """Probability that one of the steps' images is accepted: 1 − Π(1 − pᵢ)."""
    miss = 1.0
    any_step = False
    for step in steps:
        miss *= 1.0 - step[1]
        any_step = True
    return 1.0 - miss if any_step else 0.0


def worst_case_credits(steps: Sequence[Step]) -> float:
    """Credits spent when every step is tried and billed (every image produced and rejected)."""
    return math.fsum(step[0] for step in steps)


def order_key(
    credits: float, p_billed: float, p_accept: float, seconds: float
) -> tuple[float, float]:
    """The sort key of the cheapest order, then the fastest of those: (cᵢ/aᵢ, Lᵢ/pᵢ).

    cᵢ/aᵢ = cᵢ·bᵢ/pᵢ (credits per accepted image), rounded to 1e-9 credits so that keys equal
    on paper tie in floating point too; Lᵢ/pᵢ (seconds per unit of success). Both are ∞ for a
    step that never yields an accepted image.
    """
    p = p_billed * p_accept
    if p <= 0:
        return math.inf, math.inf
    return (credits if p_accept == 1.0 else round(credits / p_accept, 9)), seconds / p


def mean_latency(p50: float, p90: float) -> float:
    """The mean of the log-normal latency through a model's p50 and p90 (seconds).

    p50·exp(σ²/2) with σ = ln(p90/p50) / z₀.₉: the mean, not the median, so that expected
    seconds add up over steps. About 1.2 × p50 for a card with p90 = 2 × p50.
    """
    if p50 <= 0:
        return 0.0
    sigma = math.log(p90 / p50) / _Z90 if p90 > p50 else 0.0
    return p50 * math.exp(sigma * sigma / 2)
