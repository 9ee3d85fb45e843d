"""A per-model circuit breaker shared by every job of a router.

After ``threshold`` consecutive failures of one model (tasks that failed or timed out, transient
create errors), the model is skipped by every job for ``period`` seconds; the first success closes
the breaker again. A judge's rejection is not a failure of the model's service and is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Cooldown"]


class Cooldown:
    """Consecutive-failure counters and open breakers, by model id."""

    def __init__(
        self,
        threshold: int = 3,
        period: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.period = period
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def __repr__(self) -> str:
        opened = self.open_models()
        return f"<Cooldown {self.threshold} failures -> {self.period:g} s, open: {opened}>"

    def failure(self, model: str) -> bool:
        """Count a failure; return True when this one opened the breaker."""
        count = self._failures.get(model, 0) + 1
        self._failures[model] = count
        if count >= self.threshold and self.blocked_for(model) <= 0:
            self._open_until[model] = self._clock() + self.period
            self._failures[model] = 0
            return True
        return False

    def success(self, model: str) -> None:
        """A success closes the breaker and resets the count."""
        self._failures.pop(model, None)
        self._open_until.pop(model, None)

    def blocked_for(self, model: str) -> float:
        """Seconds the model stays blocked (0 when it may be used)."""
        until = self._open_until.get(model)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._open_until[model]
            return 0.0
        return left

    def open_models(self) -> list[str]:
        """Models currently blocked."""
        return [m for m in list(self._open_until) if self.blocked_for(m) > 0]
