"""One budget per job, shared by retries and escalations so that they never multiply.

``max_attempts`` counts create calls the router makes for the job (a create that the client
retried internally because it provably never reached KIE, or because KIE answered 429 "not
queued", counts once: none of those sends could have been billed). ``max_credits`` caps what the
job may spend: a step is only started when its price still fits. ``deadline`` is wall-clock
seconds from the start of the job, and bounds every wait inside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .policy._types import Budget

__all__ = ["JobBudget"]


class JobBudget:
    """The live counters of one job's :class:`~kierouter.Budget`. Strictly private."""

    def __init__(
        self,
        budget: Budget,
        *,
        attempts_used: int = 0,
        credits_spent: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.attempts_used = attempts_used
        self.credits_spent = credits_spent
        self._clock = clock
        self.started = clock()
        self.deadline_at = (
            self.started + budget.deadline if budget.deadline is not None else float("inf")
        )

    def __repr__(self) -> str:
        return (
            f"<JobBudget attempts {self.attempts_used}/{self.budget.max_attempts} "
            f"credits {self.credits_spent:g}/{self.budget.max_credits}>"
        )

    def remaining_time(self) -> float:
        """Seconds left before the job's deadline (``inf`` without one)."""
        return self.deadline_at - self._clock()

    def exhausted(self) -> str | None:
        """Why no further create may be sent, or ``None`` while the budget allows one."""
        if self.attempts_used >= self.budget.max_attempts:
            return f"max_attempts ({self.budget.max_attempts}) used"
        if self.remaining_time() <= 0:
            return f"deadline ({self.budget.deadline:g} s) passed"
        limit = self.budget.max_credits
        if limit is not None and self.credits_spent >= limit:
            return f"max_credits ({limit:g}) spent"
        return None

    def fits(self, credits: float) -> bool:
        """Whether a step costing ``credits`` still fits under ``max_credits``."""
        limit = self.budget.max_credits
        return limit is None or self.credits_spent + credits <= limit + 1e-9

    def take_attempt(self) -> None:
        """Count one create call."""
        self.attempts_used += 1

    def spend(self, credits: float) -> None:
        """Count credits a finished task was charged."""
        self.credits_spent += credits
