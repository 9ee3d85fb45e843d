"""Async rate limiters matched to KIE's limits (creates per window, status reads per second)."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

__all__ = ["RateLimiter", "WindowLimiter"]


class WindowLimiter:
    """At most ``limit`` calls in any ``window`` seconds, counted as the server sees them.

    A slot is taken before the call is sent and stamped when its answer arrives. Since the server
    received the call before that stamp, waiting ``window`` from the stamp guarantees the server
    never counts more than ``limit`` in any window, whatever the network delay.
    """

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._stamps: collections.deque[float] = collections.deque()  # finished calls, oldest first
        self._blocked_until = float("-inf")  # no call starts before this (after a 429)
        self._in_flight = 0
        self._cond = asyncio.Condition()

    def __repr__(self) -> str:
        return f"<WindowLimiter {self.limit}/{self.window:g}s>"

    def _expire(self, now: float) -> None:
        cut = now - self.window
        while self._stamps and self._stamps[0] <= cut:
            self._stamps.popleft()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for one call; the slot counts until ``window`` after the call ends."""
        async with self._cond:
            while True:
                now = self._clock()
                self._expire(now)
                if now < self._blocked_until:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._cond.wait(), timeout=max(self._blocked_until - now, 0.001)
                        )
                    continue
                if len(self._stamps) + self._in_flight < self.limit:
                    break
                if self._stamps:
                    wait = self._stamps[0] + self.window - now
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), timeout=max(wait, 0.001))
                else:
                    await self._cond.wait()
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._cond:
                self._in_flight -= 1
                self._stamps.append(self._clock())
                self._cond.notify_all()

    def defer(self, seconds: float) -> None:
        """Block new calls for ``seconds`` (after KIE said 429); calls already stamped keep
        counting for their window afterwards. O(1), whatever the limit."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class RateLimiter:
    """A token bucket: ``rate`` calls per second on average, bursts of at most ``burst``."""

    def __init__(
        self, rate: float, burst: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, int(rate))
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<RateLimiter {self.rate:g}/s burst {self.burst}>"

    async def acquire(self) -> None:
        """Wait until one call may be made."""
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)
