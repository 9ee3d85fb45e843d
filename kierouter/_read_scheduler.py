"""One key's status-read budget, shared by every task it follows (:class:`ReadScheduler`).

KIE allows about 10 status reads per second per key. A fixed schedule per task ignores how many
tasks share the key: a lone task is read twice in its life while nine tenths of the budget idle,
and a thousand tasks queue behind each other in arrival order. Here one scheduler per key owns the
budget (a token bucket, a margin below KIE's limit) and hands out reads; each task asks for its
next read at the instant its chance of having finished since its last read reaches a threshold
(:func:`next_read_at`, from its model's latency distribution). When more tasks are due than the
budget can read, the due task whose chance of having finished since its last read is highest
*now* (:func:`chance_since`) is read first. So a lone task is read often, and many tasks share
the budget where completions are likeliest; reads never exceed the budget.

Why the chance, and not the time since the last read, orders an overloaded key: with a thousand
tasks on a 9-reads-a-second budget each task waits some 100 s for its turn, far past any
per-task ceiling, so "longest unread first" would make a task found running at 10 s wait as if
it had been created then, behind tasks less likely to be finished. By chance, it keeps almost
its place (bench/detect_latency.py, docs/performance.md § 4).

Callback hints (a webhook said the task finished) ask for a read now and go before every
scheduled read.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import math
import time
from collections.abc import Callable

#: How likely a waiting task is to have finished, at a ``time.monotonic()`` instant: the
#: scheduler reads the likeliest first when the budget is short.
Chance = Callable[[float], float]

__all__ = ["Chance", "ReadScheduler", "chance_since", "next_read_at"]

#: The standard normal's 90th percentile: a log-normal's sigma is ln(p90 / p50) / Z90.
_Z90 = 1.2815515655446004

#: A read asked for at once (a callback hint): before every scheduled read.
NOW = float("-inf")


class ReadScheduler:
    """Hands out one key's status reads: ``rate`` per second, bursts of at most ``burst``.

    :meth:`turn` returns once the caller's read is due and the budget has room for it. Due reads
    are granted earliest-due first; a caller cancelled while waiting gives its place up. One
    scheduler serves one event loop at a time (it follows the loop it was last used on).
    """

    def __init__(
        self, rate: float, burst: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError("rate must be a finite number > 0")
        self.rate = rate
        # One by default: reads evenly spaced at the budget, so any one-second window holds at
        # most rate + 1 of them (a bucket of a second's worth could hold twice the rate).
        self.burst = burst if burst is not None else 1
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()
        self._heap: list[tuple[float, int, asyncio.Future[None], Chance | None]] = []
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        #: Reads granted so far (a benchmark or test can read it).
        self.granted = 0

    def __repr__(self) -> str:
        return f"<ReadScheduler {self.rate:g}/s burst {self.burst} waiting {len(self._heap)}>"

    @property
    def waiting(self) -> int:
        """Callers waiting for a read (due or not)."""
        return sum(1 for entry in self._heap if not entry[2].done())

    def _take(self, now: float) -> bool:
        """Take one token if the bucket has one (refilled up to ``now``)."""
        tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if tokens >= 1:
            self._tokens = tokens - 1
            self.granted += 1
            return True
        self._tokens = tokens
        return False

    async def turn(self, due: float, chance: Chance | None = None) -> None:
        """Wait until ``due`` (a ``time.monotonic()`` instant; :data:`NOW` for at once, before
        every scheduled read) and then until the budget grants this read.

        ``chance(now)`` tells how likely the task is to have finished by ``now``; among due
        reads the likeliest goes first (without it, a due read goes before every read that has
        one)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (SyncRouter, tests): waiters of the old one died
            self._loop, self._heap, self._runner, self._wake = loop, [], None, None
        now = self._clock()
        heap = self._heap
        # Fast path: due, nobody due before it, and a token free: no future, no task switch.
        if due <= now and (not heap or heap[0][0] > now) and self._take(now):
            return
        future: asyncio.Future[None] = loop.create_future()
        entry = (due, next(self._seq), future, chance)
        heapq.heappush(heap, entry)
        if self._runner is None:
            self._runner = loop.create_task(self._run())
        elif heap[0] is entry:
            self._poke()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._tokens = min(self.burst, self._tokens + 1)  # granted but not used
                self.granted -= 1
            raise

    def _poke(self) -> None:
        """Wake the runner: the earliest due read changed."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _run(self) -> None:
        """Grant due reads in order while any caller waits; ends when none does."""
        heap = self._heap
        loop = asyncio.get_running_loop()
        try:
            while heap:
                due, _, future, _ = heap[0]
                if future.done():  # cancelled while waiting, or granted out of heap order
                    heapq.heappop(heap)
                    continue
                now = self._clock()
                if due <= now:
                    if self._take(now):
                        self._likeliest(now).set_result(None)
                        continue
                    delay = (1 - self._tokens) / self.rate
                else:
                    delay = due - now
                self._wake = wake = loop.create_future()
                timer = loop.call_later(max(delay, 0.0), _resolve, wake)
                try:
                    await wake
                finally:
                    timer.cancel()
                    self._wake = None
        finally:
            if heap is self._heap:
                self._runner = None

    def _likeliest(self, now: float) -> asyncio.Future[None]:
        """The waiting future of the due read most likely to find its task finished (the heap's
        top when only one is due). One pass over the waiting reads, once per read granted, and
        only while reads queue: some 0.3 ms for a thousand tasks."""
        heap = self._heap
        top = heapq.heappop(heap)
        if top[3] is None or not heap or heap[0][0] > now:
            return top[2]
        best, best_p = top, top[3](now)
        for entry in heap:
            if entry[0] > now or entry[2].done():
                continue
            if entry[3] is None:
                best = entry
                break
            p = entry[3](now)
            if p > best_p:
                best, best_p = entry, p
        if best is not top:
            heapq.heappush(heap, top)  # its turn comes later; ``best`` leaves the heap lazily
        return best[2]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@functools.lru_cache(maxsize=256)  # one entry per model card (p50, p90)
def _shape(p50: float, p90: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log-normal through ``p50`` and ``p90``."""
    sigma = math.log(p90 / p50) / _Z90 if p90 > p50 > 0 else 0.0
    return math.log(p50) if p50 > 0 else 0.0, sigma


def _cdf(mu: float, sigma: float, t: float) -> float:
    """P(latency <= t)."""
    return 1.0 - _survival(mu, sigma, t)


def _survival(mu: float, sigma: float, t: float) -> float:
    """P(latency > t), kept exact far into the tail (no 1 - F(t) cancelling to 0)."""
    if t <= 0:
        return 1.0
    if sigma <= 0:
        return 0.0 if math.log(t) >= mu else 1.0
    return 0.5 * math.erfc((math.log(t) - mu) / (sigma * math.sqrt(2)))


def next_read_at(
    p50: float,
    p90: float,
    last: float,
    *,
    chance: float,
    min_gap: float,
    max_gap: float,
) -> float:
    """Model seconds after the create at which a task last read ``last`` seconds after its
    create (0: never read) should be read again.

    That is when the chance that it finished since ``last``, given it had not by then,
    reaches ``chance``: F(t) = F(last) + chance × (1 − F(last)) for the model's log-normal
    latency F through ``p50`` and ``p90``; kept between ``min_gap`` and ``max_gap`` after
    ``last``.
    """
    from statistics import NormalDist  # not at import time: keeps ``import kierouter`` light

    if p50 <= 0:
        return last + min_gap
    mu, sigma = _shape(p50, max(p50, p90))
    done = _cdf(mu, sigma, last)
    target = done + chance * (1.0 - done)
    if sigma <= 0 or target >= 1.0 - 1e-12:
        at = last + max_gap if sigma > 0 else max(p50, last + min_gap)
    else:
        at = math.exp(mu + sigma * NormalDist().inv_cdf(target))
    return min(max(at, last + min_gap), last + max_gap)


def chance_since(p50: float, p90: float, last: float, now: float, *, ceiling: float) -> float:
    """P(a task finished between ``last`` and ``now`` model seconds after its create | it had
    not by ``last``), for its model's log-normal latency through ``p50`` and ``p90``.

    A task whose model has no latency figures (``p50`` <= 0) counts as ever likelier to be
    finished until ``ceiling`` seconds have passed since ``last``, and as certainly finished
    from then on.
    """
    if p50 <= 0:
        return min(1.0, (now - last) / ceiling)
    mu, sigma = _shape(p50, max(p50, p90))
    alive = _survival(mu, sigma, last)
    if alive <= 0.0:  # past the end of its distribution: surely finished
        return 1.0
    return 1.0 - _survival(mu, sigma, now) / alive
