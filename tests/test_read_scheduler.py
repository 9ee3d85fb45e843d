"""The shared status-read scheduler: one key's budget, read by chance of completion."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from kierouter import PollConfig, Router
from kierouter._errors import ConfigurationError
from kierouter._read_scheduler import NOW, ReadScheduler, next_read_at
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SEEDREAM = "bytedance/seedream-v4-text-to-image"
ONLY_SEEDREAM = Policy(
    name="only-seedream", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,))
)


def _plugins() -> list[Any]:
    import kierouter_seedream

    return [kierouter_seedream]


def _cdf(p50: float, p90: float, t: float) -> float:
    sigma = math.log(p90 / p50) / 1.2815515655446004
    return 0.5 * math.erfc(-(math.log(t) - math.log(p50)) / (sigma * math.sqrt(2)))


@pytest.mark.parametrize("last", [0.0, 5.0, 20.0, 44.0, 90.0])
def test_next_read_comes_when_the_chance_of_having_finished_reaches_the_threshold(
    last: float,
) -> None:
    """P(finished by t | not by last) is the chance asked for, unless a gap bound applies."""
    at = next_read_at(20, 45, last, chance=0.05, min_gap=0.5, max_gap=15)
    done = _cdf(20, 45, last) if last else 0.0
    chance = (_cdf(20, 45, at) - done) / (1 - done)
    if last + 0.5 < at < last + 15:
        assert chance == pytest.approx(0.05, rel=1e-6)
    else:
        assert chance <= 0.05 + 1e-9 or at == pytest.approx(last + 0.5)


def test_next_read_gaps_stay_between_the_floor_and_the_ceiling() -> None:
    """A task is never read twice within min_gap, and never left longer than max_gap."""
    for p50, p90 in ((1, 2), (20, 45), (60, 200), (5, 5)):
        last = 0.0
        for _ in range(200):
            at = next_read_at(p50, p90, last, chance=0.2, min_gap=0.5, max_gap=6)
            assert last + 0.5 - 1e-9 <= at <= last + 6 + 1e-9
            last = at
    # a larger threshold waits longer: the gap grows with the chance asked for
    assert next_read_at(20, 45, 20, chance=0.2, min_gap=0.1, max_gap=60) > next_read_at(
        20, 45, 20, chance=0.05, min_gap=0.1, max_gap=60
    )


async def test_due_reads_are_granted_earliest_due_first_and_hints_before_all() -> None:
    """With one read's worth of budget, three due callers and a hint are served in due order
    (the hint first); one cancelled while waiting gives its place up."""
    scheduler = ReadScheduler(rate=20.0, burst=1)
    await scheduler.turn(NOW)  # empty the bucket: every caller below has to queue
    loop = asyncio.get_running_loop()
    now = loop.time()
    order: list[str] = []

    async def ask(name: str, due: float) -> None:
        await scheduler.turn(due)
        order.append(name)

    late = asyncio.create_task(ask("late", now - 0.001))
    early = asyncio.create_task(ask("early", now - 0.003))
    gone = asyncio.create_task(ask("gone", now - 0.004))
    hint = asyncio.create_task(ask("hint", NOW))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(late, early, hint)
    assert order == ["hint", "early", "late"]
    assert scheduler.granted == 4
    assert scheduler.waiting == 0


async def test_when_reads_queue_the_likeliest_to_find_its_task_finished_goes_first() -> None:
    """Three reads due at once with one read's worth of budget: they are granted by their
    chance of finding the task finished, not by when they became due."""
    scheduler = ReadScheduler(rate=20.0, burst=1)
    await scheduler.turn(NOW)
    now = asyncio.get_running_loop().time()
    order: list[str] = []

    async def ask(name: str, due: float, chance: float) -> None:
        await scheduler.turn(due, lambda _now: chance)
        order.append(name)

    await asyncio.gather(
        ask("due first, unlikely", now - 0.003, 0.1),
        ask("likeliest", now - 0.001, 0.9),
        ask("middle", now - 0.002, 0.5),
    )
    assert order == ["likeliest", "middle", "due first, unlikely"]
    assert scheduler.waiting == 0


def test_chance_since_is_the_conditional_chance() -> None:
    """chance_since is P(done by now | not by last) for the model's latency."""
    from kierouter._read_scheduler import chance_since

    p = chance_since(20, 45, 10.0, 20.0, ceiling=15)
    assert p == pytest.approx((0.5 - _cdf(20, 45, 10.0)) / (1 - _cdf(20, 45, 10.0)), rel=1e-9)
    assert chance_since(20, 45, 0.0, 5.0, ceiling=15) == pytest.approx(_cdf(20, 45, 5.0))
    # a long wait since the last read makes a task likely, not certain
    assert 0.6 < chance_since(20, 45, 30.0, 46.0, ceiling=15) < 0.7


def test_chance_since_orders_overdue_tasks_by_how_likely_they_are_finished() -> None:
    """With a thousand tasks waiting, reads go where a task is likeliest to be finished: an old
    task never read before one that was just found running, however long ago that one was
    created; and the ordering holds far into the tail, where 1 - F(t) would round to 0."""
    from kierouter._read_scheduler import chance_since

    never_read = chance_since(20, 45, 0.0, 100.0, ceiling=15)
    missed_at_10 = chance_since(20, 45, 10.0, 100.0, ceiling=15)
    missed_just_now = chance_since(20, 45, 95.0, 100.0, ceiling=15)
    assert never_read > missed_at_10 > missed_just_now
    assert missed_at_10 > chance_since(20, 45, 0.0, 90.0, ceiling=15)  # ~ a task of 97 s
    # deep in the tail: still ordered, still below 1 (a read found these running at 600 s)
    late, later = (chance_since(20, 45, 600.0, t, ceiling=15) for t in (610.0, 700.0))
    assert 0.0 < late < later < 1.0
    # past the end of what a double can tell apart: certainly finished, never starved at 0
    assert chance_since(20, 45, 1e14, 1e14 + 1, ceiling=15) == 1.0


def test_a_model_without_latency_figures_waits_its_ceiling() -> None:
    from kierouter._read_scheduler import chance_since

    assert chance_since(0, 0, 10.0, 17.5, ceiling=15) == pytest.approx(0.5)
    assert chance_since(0, 0, 10.0, 40.0, ceiling=15) == 1.0


async def test_grants_never_exceed_the_budget() -> None:
    """However many callers are due at once, grants come at the budget's rate: after the burst,
    one per 1/rate seconds, counted against the loop's clock."""
    scheduler = ReadScheduler(rate=100.0, burst=5)
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def ask() -> None:
        await scheduler.turn(NOW)
        stamps.append(loop.time())

    await asyncio.gather(*(ask() for _ in range(25)))
    first = stamps[0]
    for i, at in enumerate(stamps):
        # the i-th grant needs i + 1 - burst tokens refilled at 100/s
        assert at - first >= (i + 1 - 5) / 100.0 - 0.002


def test_budget_and_config_are_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        ReadScheduler(0)
    with pytest.raises(ConfigurationError, match="status_budget"):
        KieClient("k", status_budget=float("inf"))
    with pytest.raises(ConfigurationError, match="scheduler"):
        PollConfig(scheduler="sometimes")
    with pytest.raises(ConfigurationError, match="read_chance"):
        PollConfig(read_chance=1.0)
    with pytest.raises(ConfigurationError, match="min_read_gap"):
        PollConfig(min_read_gap=0)
    assert KieClient("k", read_rate=10).read_scheduler.rate == pytest.approx(9.0)


async def _run(
    emu: Emulator, jobs: int, scheduler: str, read_rate: float, budget: float | None = None
) -> dict[str, Any]:
    client = KieClient(
        emu.api_key,
        base_url=emu.base_url,
        create_limit=10_000,
        create_window=1.0,
        read_rate=read_rate,
        status_budget=budget,
        read_attempts=1,
    )
    router = Router(
        _plugins(),
        client=client,
        latency_scale=1 / emu.time_scale,
        poll=PollConfig(scheduler=scheduler),
    )
    before = emu.stats()
    async with client, router:
        results = await asyncio.gather(
            *(router.generate(f"a fox {i}", policy=ONLY_SEEDREAM) for i in range(jobs)),
            return_exceptions=True,
        )
    after = emu.stats()
    return {
        "ok": sum(1 for r in results if not isinstance(r, BaseException)),
        "reads": after["status_reads"] - before["status_reads"],
        "429": after["rejected"].get("429", 0) - before["rejected"].get("429", 0),
    }


async def test_many_tasks_share_the_budget_without_a_single_429() -> None:
    """40 tasks at once on a key the emulator limits to 40 status reads a second, the client's
    own read limiter far above that (1000/s) and the status budget 36/s: the shared scheduler
    alone keeps the reads under the limit, to the end with no 429. The fixed per-task schedule
    through the same client is refused."""
    async with Emulator(time_scale=100, read_limit=40, create_limit=10_000) as emu:
        shared = await _run(emu, 40, "shared", read_rate=1000, budget=36)
        fixed = await _run(emu, 40, "per-task", read_rate=1000, budget=36)
    assert shared["ok"] == 40
    assert shared["429"] == 0
    assert shared["reads"] >= 40
    assert fixed["429"] > 0


async def test_a_lone_task_is_read_more_often_than_on_the_fixed_schedule() -> None:
    """One task alone on its key: the shared scheduler spends the idle budget reading it near
    its likely end (several reads), where the fixed per-task schedule reads it two or three
    times."""
    async with Emulator(time_scale=50, seed=7, create_limit=10_000) as emu:
        fixed = [await _run(emu, 1, "per-task", read_rate=1000) for _ in range(4)]
        shared = [await _run(emu, 1, "shared", read_rate=1000) for _ in range(4)]
    assert all(r["ok"] == 1 for r in fixed + shared)
    assert sum(r["reads"] for r in shared) > 2 * sum(r["reads"] for r in fixed)
