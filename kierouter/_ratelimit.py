"""Async rate limiters matched to KIE's limits (creates per window, status reads per second)."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from types import TracebackType

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
        self._waiting = 0  # callers queued in the slow path
        self._cond = asyncio.Condition()

    def __repr__(self) -> str:
        return f"<WindowLimiter {self.limit}/{self.window:g}s>"

    def _expire(self, now: float) -> None:
        cut = now - self.window
        while self._stamps and self._stamps[0] <= cut:
            self._stamps.popleft()

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Hold a slot for one call; the slot counts until ``window`` after the call ends."""
        return _Slot(self)

    def _take_now(self) -> bool:
        """Fast path: nobody is waiting and there is room, so the slot is taken at once (no
        await between the check and the take, so nothing can interleave)."""
        if not self._waiting and not self._cond.locked():
            now = self._clock()
            if now >= self._blocked_until:
                self._expire(now)
                if len(self._stamps) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return True
        return False

    def _give_back_now(self) -> bool:
        """Fast path: nobody to wake, so stamp and release without the condition's lock."""
        if not self._waiting and not self._cond.locked():
            self._in_flight -= 1
            self._stamps.append(self._clock())
            return True
        return False

    async def _take(self) -> None:
        # Queue on the condition exactly as before, in arrival order.
        if self._take_now():
            return
        self._waiting += 1
        try:
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
        finally:
            self._waiting -= 1

    async def _give_back(self) -> None:
        if self._give_back_now():
            return
        async with self._cond:
            self._in_flight -= 1
            self._stamps.append(self._clock())
            self._cond.notify_all()

    def defer(self, seconds: float) -> None:
        """Block new calls for ``seconds`` (after KIE said 429); calls already stamped keep
        counting for their window afterwards. O(1), whatever the limit."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class _Slot:
    """``async with limiter.slot():`` without a generator-based context manager per call."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: WindowLimiter) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> None:
        if not self._limiter._take_now():
            await self._limiter._take()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._limiter._give_back_now():
            await self._limiter._give_back()


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
        self._waiting = 0  # callers queued behind the lock
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<RateLimiter {self.rate:g}/s burst {self.burst}>"

    async def acquire(self) -> None:
        """Wait until one call may be made."""
        if not self._waiting:
            # Fast path: nobody queued; take a token at once if there is one.
            now = self._clock()
            tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            if tokens >= 1:
                self._tokens = tokens - 1
                self._last = now
                return
        self._waiting += 1
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    await asyncio.sleep((1 - self._tokens) / self.rate)
        finally:
            self._waiting -= 1
