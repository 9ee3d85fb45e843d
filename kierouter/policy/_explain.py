"""A plan as JSON (``kierouter explain --json``), and the credit-to-dollar rate it uses.

:func:`kierouter.explain` (which loads the installed plugins) lives above this package.
"""

from __future__ import annotations

import math
from typing import Any

from ._types import Plan

__all__ = ["USD_PER_CREDIT", "plan_json"]

USD_PER_CREDIT = 0.005
"""1 credit ≈ $0.005 (the quick-reference sheet's cost calculator)."""


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
