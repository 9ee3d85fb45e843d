"""WindowLimiter.defer (after a 429) blocks new calls at O(1) cost, whatever the limit."""

from __future__ import annotations

import asyncio

from kierouter._ratelimit import WindowLimiter


async def _enter(limiter: WindowLimiter) -> None:
    async with limiter.slot():
        pass


async def test_defer_with_a_huge_limit_keeps_no_per_slot_state() -> None:
    """A client configured far above KIE's limit does not build a limit-sized list on a 429."""
    limiter = WindowLimiter(10**7, 1.0)
    limiter.defer(0.2)
    limiter.defer(0.1)  # a shorter second deferral does not shorten the first
    assert len(limiter._stamps) == 0
    waiting = asyncio.create_task(_enter(limiter))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await asyncio.wait_for(waiting, 5.0)


async def test_calls_stamped_before_a_deferral_still_count_after_it() -> None:
    """Once the deferral is over, the window still holds the calls made before it."""
    limiter = WindowLimiter(2, 30.0)
    await _enter(limiter)
    await _enter(limiter)
    limiter.defer(0.05)
    third = asyncio.create_task(_enter(limiter))
    await asyncio.sleep(0.2)  # past the deferral, inside the window of the first two calls
    assert not third.done()
    third.cancel()
    await asyncio.gather(third, return_exceptions=True)


async def test_a_deferral_holds_even_when_the_window_is_empty() -> None:
    """With no call in the window, defer() alone keeps the next call waiting until it ends."""
    limiter = WindowLimiter(5, 0.01)
    limiter.defer(0.3)
    waiting = asyncio.create_task(_enter(limiter))
    await asyncio.sleep(0.1)  # ten windows later, still deferred
    assert not waiting.done()
    await asyncio.wait_for(waiting, 5.0)
