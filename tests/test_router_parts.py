"""The router's small parts: per-rung seeds, the job budget, the cooldown, the event bus."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kierouter._budget import JobBudget
from kierouter._cooldown import Cooldown
from kierouter._errors import register_secret
from kierouter._events import EventBus
from kierouter._models import Event
from kierouter._seeds import MAX_SEED, rung_seed
from kierouter.policy import Budget


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rung_seeds_are_deterministic_and_distinct() -> None:
    """Rung 0 keeps the user's seed; later rungs get stable, different, in-range seeds."""
    seeds = [rung_seed(42, rung) for rung in range(5)]
    assert seeds[0] == 42
    assert seeds == [rung_seed(42, rung) for rung in range(5)]
    assert len(set(seeds)) == 5
    assert all(s is not None and 0 <= s <= MAX_SEED for s in seeds)
    assert rung_seed(43, 1) != seeds[1]
    assert rung_seed(None, 3) is None


def test_budget_counts_attempts_credits_and_time() -> None:
    """The budget says why it is exhausted: attempts, credits or the deadline; credits held for
    a running task count like credits spent until it is settled to what KIE charged."""
    clock = _Clock()
    budget = JobBudget(Budget(max_attempts=2, max_credits=10, deadline=60), clock=clock)
    assert budget.exhausted() is None
    assert budget.fits(10) and not budget.fits(10.5)
    budget.take_attempt()
    budget.hold(4)
    assert not budget.fits(6.5)
    budget.settle(4, 8)  # KIE charged twice the card
    assert (budget.held, budget.credits_spent) == (0, 8)
    assert not budget.fits(4)
    budget.take_attempt()
    assert budget.exhausted() == "max_attempts (2) used"
    later = JobBudget(Budget(max_attempts=5, deadline=60), clock=clock)
    clock.now += 61
    assert later.exhausted() == "deadline (60 s) passed"
    spent = JobBudget(Budget(max_credits=5), credits_spent=5)
    assert spent.exhausted() == "max_credits (5) spent"


def test_cooldown_opens_after_consecutive_failures_and_expires() -> None:
    """Three failures in a row block a model for the period; a success resets the count."""
    clock = _Clock()
    cooldown = Cooldown(threshold=3, period=30, clock=clock)
    cooldown.failure("m")
    cooldown.failure("m")
    cooldown.success("m")
    cooldown.failure("m")
    cooldown.failure("m")
    assert cooldown.blocked_for("m") == 0
    assert cooldown.failure("m") is True
    assert cooldown.blocked_for("m") == 30
    assert cooldown.open_models() == ["m"]
    clock.now += 31
    assert cooldown.blocked_for("m") == 0
    assert cooldown.blocked_for("other") == 0


async def test_event_bus_isolates_sinks_and_awaits_async_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A raising sink is logged and skipped; async sinks are awaited by drain()."""
    seen: list[str] = []
    done = asyncio.Event()

    def broken(event: Event) -> None:
        raise RuntimeError("sink exploded")

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append("async:" + event.kind)
        done.set()

    bus = EventBus({"broken": broken, "list": lambda e: seen.append(e.kind), "slow": slow})
    with caplog.at_level(logging.WARNING, logger="kierouter"):
        bus.emit("created", "job-1", model="m", task_id="t")
    await bus.drain()
    assert seen == ["created", "async:created"]
    assert "sink exploded" in caplog.text
    assert bus.sink_names == ["log", "broken", "list", "slow"]


def test_log_sink_never_writes_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """The built-in logging sink scrubs registered secrets from event details."""
    register_secret("sk-event-secret-123456")
    bus = EventBus()
    with caplog.at_level(logging.DEBUG, logger="kierouter"):
        event = bus.emit("failed", "job-1", model="m", detail="bad key sk-event-secret-123456")
    assert "sk-event-secret-123456" not in caplog.text
    assert "sk-event-secret-123456" not in event.detail
    assert "job job-1: failed m" in caplog.text
