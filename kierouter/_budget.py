"""Budgets: one per job (attempts, credits, deadline) and one per router (a spend limit).

**A job's budget** is shared by its retries and escalations so they never multiply.
``max_attempts`` counts create calls the router makes for the job (a create the client retried
internally because it provably never reached KIE, or because KIE answered 429 "not queued",
counts once: none of those sends could have been billed). ``max_credits`` caps what the job may
spend: a create is sent only when its price fits beside what was charged and what running tasks
hold. ``deadline`` is wall-clock seconds from the start of the job and bounds when a create may
start and how long a task is followed before it counts as timed out.

**A router's spend limit** (``Router(budget=...)``, a batch's ``--budget``) is shared by every
job of the router. Before each create its price is *held*; when the task ends the hold is
*settled* to what KIE charged (or released when nothing was). A create is refused with
:class:`~kierouter.BudgetReachedError` when the charged credits, the holds of running tasks and
its own price would pass the limit, so concurrent jobs can never overspend together.

Prices are the cards' until KIE says otherwise: once a task of a model is settled for more than
its card, later holds for that model use the charged ratio. With a limit set, the first task of
each model runs alone until it is settled (price discovery), so a KIE charging twice the card
cannot push a whole wave of creates past the limit.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable

from ._errors import BudgetReachedError, ConfigurationError
from .policy._types import Budget

__all__ = ["Hold", "JobBudget", "SpendLimit"]


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
        #: credits held for this job's tasks still running (hedged ones included)
        self.held = 0.0
        self._clock = clock
        self.started = clock()
        self.deadline_at = (
            self.started + budget.deadline if budget.deadline is not None else float("inf")
        )

    def __repr__(self) -> str:
        return (
            f"<JobBudget attempts {self.attempts_used}/{self.budget.max_attempts} "
            f"credits {self.credits_spent:g}+{self.held:g}/{self.budget.max_credits}>"
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
        if limit is not None and self.credits_spent + self.held >= limit:
            return f"max_credits ({limit:g}) spent"
        return None

    def fits(self, credits: float) -> bool:
        """Whether a create costing ``credits`` still fits under ``max_credits``."""
        limit = self.budget.max_credits
        return limit is None or self.credits_spent + self.held + credits <= limit + 1e-9

    def left(self) -> float:
        """Credits left under ``max_credits`` (``inf`` without one)."""
        limit = self.budget.max_credits
        return math.inf if limit is None else limit - self.credits_spent - self.held

    def take_attempt(self) -> None:
        """Count one create call."""
        self.attempts_used += 1

    def hold(self, credits: float) -> None:
        """Hold ``credits`` for a task about to be created."""
        self.held += credits

    def settle(self, held: float, charged: float) -> None:
        """A task ended: drop its hold of ``held`` and count the ``charged`` credits."""
        self.held = max(0.0, self.held - held)
        self.credits_spent += charged


class Hold:
    """Credits held for one create under a :class:`SpendLimit`. Strictly private."""

    __slots__ = ("amount", "card", "model", "n", "open")

    def __init__(self, n: int, model: str, card: float, amount: float) -> None:
        self.n = n
        self.model = model
        self.card = card
        self.amount = amount
        self.open = True

    def __repr__(self) -> str:
        return f"<Hold {self.model} {self.amount:g}>"


class SpendLimit:
    """Credits every job of one router may spend together. Strictly private.

    ``limit=None`` counts without refusing anything (holds and ratios still work, so a
    router without a limit still learns what KIE charges).
    """

    def __init__(self, limit: float | None = None, *, spent: float = 0.0) -> None:
        if limit is not None and (not math.isfinite(limit) or limit < 0):
            raise ConfigurationError(f"budget must be a finite number >= 0, got {limit!r}")
        self.limit = limit
        self.spent = spent
        self._holds: dict[int, Hold] = {}
        self._ids = itertools.count(1)
        self._ratio: dict[str, float] = {}
        self._probing: dict[str, asyncio.Event] = {}
        #: set once a create was refused: the limit is reached for this router
        self.reached: BudgetReachedError | None = None

    def __repr__(self) -> str:
        return f"<SpendLimit {self.spent:g}+{self.held:g}/{self.limit}>"

    @property
    def held(self) -> float:
        """Credits held for tasks still running."""
        return sum(h.amount for h in self._holds.values())

    @property
    def committed(self) -> float:
        """Credits charged plus credits held."""
        return self.spent + self.held

    def price(self, model: str, card: float) -> float:
        """What a create on ``model`` is expected to cost: its card, raised to the ratio KIE
        charged for the model's last settled task when that was more."""
        return card * max(1.0, self._ratio.get(model, 1.0))

    async def hold(self, model: str, card: float) -> Hold:
        """Hold the price of one create, or raise :class:`BudgetReachedError`."""
        if self.limit is not None:
            # price discovery: the model's first task runs alone until KIE says what it costs
            while model not in self._ratio and model in self._probing:
                await self._probing[model].wait()
        amount = self.price(model, card)
        if self.limit is not None and self.committed + amount > self.limit + 1e-9:
            self.reached = BudgetReachedError(self.committed, self.limit)
            raise self.reached
        hold = Hold(next(self._ids), model, card, amount)
        self._holds[hold.n] = hold
        if self.limit is not None and model not in self._ratio:
            self._probing.setdefault(model, asyncio.Event())
        return hold

    def hold_existing(self, model: str, card: float) -> Hold:
        """Hold the price of a task created earlier (resumed): it may be billed whatever the
        limit says, so it is held without a check."""
        hold = Hold(next(self._ids), model, card, self.price(model, card))
        self._holds[hold.n] = hold
        return hold

    def settle(self, hold: Hold, charged: float, *, learn: bool = True) -> None:
        """The task ended and KIE charged ``charged``: count it and drop the hold. With
        ``learn`` (a finished task: ``charged`` is its price) later holds for the model use it."""
        if not hold.open:
            return
        hold.open = False
        self._holds.pop(hold.n, None)
        self.spent += charged
        if learn and hold.card > 0:
            self._ratio[hold.model] = charged / hold.card
        self._end_probe(hold.model)

    def release(self, hold: Hold) -> None:
        """Nothing was charged and nothing will be (the create was refused, the task failed)."""
        if not hold.open:
            return
        hold.open = False
        self._holds.pop(hold.n, None)
        self._end_probe(hold.model)

    def unblock(self, model: str) -> None:
        """The model's first task will not say its price soon (its answer was lost, or it ran
        past its deadline): let other creates of the model go at the card's price."""
        self._end_probe(model)

    def _end_probe(self, model: str) -> None:
        event = self._probing.pop(model, None)
        if event is not None:
            event.set()
