"""The batch's create gate: KIE's create rate, the in-flight budget cap, durable intents."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from contextlib import suppress

from kierouter._errors import KieRouterError
from kierouter.journal import CreateGate, JournalBackend

__all__ = ["BudgetReachedError", "CreatePacer", "PacedGate"]


class BudgetReachedError(KieRouterError):
    """The batch's ``--budget`` would be exceeded by the next create; no task is created."""

    def __init__(self, spent: float, budget: float) -> None:
        self.spent = spent
        self.budget = budget
        super().__init__(
            f"the batch budget of {budget:g} credits is reached ({spent:g} spent or committed); "
            "no further task is created. Resume with a larger --budget to finish"
        )


class CreatePacer:
    """At most ``limit`` creates in any ``window`` seconds, counted as KIE counts them.

    A slot is taken before the intent is journaled and released (stamped) when the create is
    answered; waiting ``window`` from that stamp means KIE never sees more than ``limit`` in a
    window. The router's own client limiter, set to the same numbers, then never has to wait, so
    a job is ``submitting`` only while its POST is on the wire.
    """

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._stamps: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._changed = asyncio.Event()
        #: creates let through so far
        self.granted = 0

    def __repr__(self) -> str:
        return f"<CreatePacer {self.limit}/{self.window:g}s>"

    async def acquire(self) -> None:
        """Wait for a slot."""
        while True:
            now = time.monotonic()
            while self._stamps and self._stamps[0] <= now - self.window:
                self._stamps.popleft()
            if len(self._stamps) + self._in_flight < self.limit:
                self._in_flight += 1
                self.granted += 1
                return
            timeout = self._stamps[0] + self.window - now if self._stamps else None
            self._changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def release(self) -> None:
        """The create was answered: its slot counts for one more window."""
        self._in_flight -= 1
        self._stamps.append(time.monotonic())
        self._changed.set()


class PacedGate(CreateGate):
    """Paces creates with a :class:`CreatePacer` and refuses those over the batch budget.

    ``cost_of(job_key, model)`` is the expected price of the create; spent credits come from the
    journal, plus what creates in flight are expected to cost.
    """

    def __init__(
        self,
        pacer: CreatePacer,
        backend: JournalBackend,
        *,
        budget: float | None,
        cost_of: Callable[[str, str], float],
    ) -> None:
        self.pacer = pacer
        self.backend = backend
        self.budget = budget
        self.cost_of = cost_of
        self._held: set[str] = set()
        self._reserved: dict[str, float] = {}
        #: set once a create was refused for the budget; no create is let through after that
        self.stopped: BudgetReachedError | None = None

    def committed(self) -> float:
        """Credits spent plus credits expected for creates in flight."""
        return self.backend.spent() + sum(self._reserved.values())

    async def before(self, job_key: str, model: str) -> None:
        """Refuse when the budget would be passed; else wait for a create slot."""
        if self.stopped is not None:
            raise self.stopped
        cost = self.cost_of(job_key, model)
        if self.budget is not None:
            committed = self.committed()
            if committed + cost > self.budget + 1e-9:
                self.stopped = BudgetReachedError(committed, self.budget)
                raise self.stopped
        self._reserved[job_key] = cost
        try:
            await self.pacer.acquire()
        except BaseException:
            self._reserved.pop(job_key, None)
            raise
        self._held.add(job_key)

    def answered(self, job_key: str) -> None:
        """Release the create slot (once)."""
        if job_key in self._held:
            self._held.discard(job_key)
            self.pacer.release()

    def ended(self, job_key: str) -> None:
        """The attempt is over: its credits are in the journal now."""
        self.answered(job_key)
        self._reserved.pop(job_key, None)
