"""Routing policies: pick models by cost, speed, quality and language, and explain the choice."""

from __future__ import annotations

from ._types import DEFAULT_LADDER, Budget, Constraints, Dropped, Objective, Plan, PlanStep, Policy

__all__ = [
    "DEFAULT_LADDER",
    "Budget",
    "Constraints",
    "Dropped",
    "Objective",
    "Plan",
    "PlanStep",
    "Policy",
]
