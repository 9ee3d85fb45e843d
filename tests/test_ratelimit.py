"""The rate limiters never let more calls through than KIE's limits allow."""

from __future__ import annotations

import asyncio

import pytest

from kierouter._ratelimit import RateLimiter, WindowLimiter


async def test_window_limiter_counts_calls_until_their_answer_arrives() -> None:
    """With 3 slots per window, a 4th call waits until the oldest finished call is a window old."""
    limiter = WindowLimiter(3, 0.4)
    for _ in range(3):
        async with limiter.slot():
            pass
    fourth = asyncio.create_task(_enter(limiter))
    await asyncio.sleep(0.05)
    assert not fourth.done(), "a 4th call inside the window must wait"
    await asyncio.wait_for(fourth, 5.0)


async def test_window_limiter_counts_in_flight_calls() -> None:
    """Calls still in flight hold their slot: no more than `limit` can be outstanding."""
    limiter = WindowLimiter(2, 30.0)
    release = asyncio.Event()
    entered = 0

    async def hold() -> None:
        nonlocal entered
        async with limiter.slot():
            entered += 1
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert entered == 2
    release.set()
    await asyncio.sleep(0.05)
    assert entered == 2, "the third still waits: both finished calls are inside the window"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_window_limiter_defer_blocks_new_calls() -> None:
    """After a 429, defer() keeps new calls out for the requested time, then lets them in."""
    limiter = WindowLimiter(5, 10.0)
    limiter.defer(0.3)
    waiting = asyncio.create_task(_enter(limiter))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await asyncio.wait_for(waiting, 5.0)


async def test_token_bucket_spaces_calls_at_the_rate() -> None:
    """A 20/s bucket with burst 1 makes the 2nd call wait for a token."""
    bucket = RateLimiter(20.0, burst=1)
    await bucket.acquire()
    second = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0.005)
    assert not second.done()
    await asyncio.wait_for(second, 5.0)


def test_limiters_reject_nonsense_settings() -> None:
    """Zero or negative limits are configuration mistakes, reported at once."""
    with pytest.raises(ValueError):
        WindowLimiter(0, 10)
    with pytest.raises(ValueError):
        RateLimiter(0)


async def _enter(limiter: WindowLimiter) -> None:
    async with limiter.slot():
        pass
