"""The batch's create gate: KIE's create rate, counted as KIE counts it, around durable intents."""

from __future__ import annotations

import asyncio
import collections
import time
from contextlib import suppress

from kierouter._errors import BudgetReachedError
from kierouter.journal import CreateGate

__all__ = ["BudgetReachedError", "CreatePacer", "PacedGate"]


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
    """Paces a router's creates with a :class:`CreatePacer` (the batch's create gate).

    The slot is taken before the intent is journaled and released when the create is answered,
    so a job is ``submitting`` only while its POST is on the wire. (The batch's ``--budget`` is
    the router's spend limit, ``Router(budget=...)``, which holds each create's price.)
    """

    def __init__(self, pacer: CreatePacer) -> None:
        self.pacer = pacer
        self._held: set[str] = set()

    def __repr__(self) -> str:
        return f"<PacedGate {self.pacer!r}>"

    async def before(self, job_key: str, model: str) -> None:
        """Wait for a create slot."""
        await self.pacer.acquire()
        self._held.add(job_key)

    def answered(self, job_key: str) -> None:
        """Release the create slot (once)."""
        if job_key in self._held:
            self._held.discard(job_key)
            self.pacer.release()

    def ended(self, job_key: str) -> None:
        """The attempt is over (its slot, if still held, is released)."""
        self.answered(job_key)
