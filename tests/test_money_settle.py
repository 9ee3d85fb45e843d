"""Money from KIE, not from the card: credits are held at the card's price before a create and
settled to what KIE charged; budgets (a job's, a router's, a batch's) count settled credits."""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Any

import pytest

import kierouter as kr
from kierouter import Router
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SCALE = 500.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"
ONLY_SEEDREAM = Policy(
    name="seedream", ladder=("seedream",), constraints=Constraints(allow=(SEEDREAM,))
)
GPT4O = Policy(name="4o", ladder=("gpt4o-image",), constraints=Constraints(allow=("gpt4o-image",)))


def _plugins() -> list[Any]:
    import kierouter_gpt4o_image
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana, kierouter_gpt4o_image]


def _router(emu: Emulator, **kw: Any) -> Router:
    client = kr.KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000)
    return Router(_plugins(), client=client, latency_scale=1 / SCALE, **kw)


async def test_credits_are_what_kie_charged_and_overcharges_are_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """KIE charging twice the card: the attempt's and the result's credits are the task's
    reported cost (creditsConsumed), and an 'overcharged' event and a warning say so."""
    events: list[kr.Event] = []
    async with Emulator(time_scale=SCALE, price_multiplier=2.0) as emu:
        async with _router(emu, event_sinks=[events.append]) as router:
            with caplog.at_level(logging.WARNING, logger="kierouter"):
                result = await router.generate("a red fox", policy=ONLY_SEEDREAM)
        charged = emu.charges()["total"]
    (attempt,) = result.attempts
    assert charged == 7.0  # the card says 3.5
    assert result.credits == attempt.credits == charged and attempt.credits_source == "task"
    assert router.spent == charged
    (over,) = [e for e in events if e.kind == "overcharged"]
    assert "7" in over.detail and "3.5" in over.detail
    assert any("KIE charged 7 credits" in r.getMessage() for r in caplog.records)


async def test_a_family_that_reports_no_cost_is_settled_from_the_balance() -> None:
    """GPT-4o's status reports no per-task cost: with the router otherwise idle, a job's credits
    are the balance it moved (KIE charging 1.5x the card), learnt from the account, not the
    card. The first job has no balance from before it (none is read before a create) and is
    settled at the card's price; the balance read after it starts the next one's."""
    async with Emulator(time_scale=SCALE, price_multiplier=1.5) as emu:
        async with _router(emu) as router:
            first = await router.generate("a red fox", policy=GPT4O)
            second = await router.generate("a grey wolf", policy=GPT4O)
        charged = emu.charges()["tasks"]
    assert first.attempts[0].credits_source == "card" and first.credits == 10
    (attempt,) = second.attempts
    assert attempt.credits_source == "balance"
    assert second.credits == charged[attempt.task_id or ""] == 15.0  # the card says 10


async def test_a_router_budget_holds_across_concurrent_jobs() -> None:
    """Router(budget=25) with KIE charging twice the card (7 per task, card 3.5): ten jobs at
    once never spend past it; the first task of the model runs alone until KIE says its price;
    the jobs with no room raise BudgetReachedError and create nothing."""
    async with Emulator(time_scale=SCALE, price_multiplier=2.0) as emu:
        async with _router(emu, budget=25) as router:
            outcomes = await asyncio.gather(
                *(router.generate(f"a red fox {i}", policy=ONLY_SEEDREAM) for i in range(10)),
                return_exceptions=True,
            )
        charged = emu.charges()["total"]
        created = emu.stats()["created_total"]
    served = [o for o in outcomes if isinstance(o, kr.Result)]
    refused = [o for o in outcomes if isinstance(o, kr.BudgetReachedError)]
    assert len(served) + len(refused) == 10, outcomes
    assert charged <= 25 and router.spent == charged == 7 * len(served)
    assert created == len(served) == 3
    assert router.budget_reached and "budget of 25" in str(refused[0])


async def test_a_batch_budget_counts_what_kie_charged(tmp_path: Path) -> None:
    """A batch whose plan fits its 40-credit budget at card prices, with KIE charging twice the
    card: it stops creating before passing the budget, and the journal's spend is exactly what
    the emulator charged (before: 47 % over the budget)."""
    from kierouter.batch import BatchSettings, parse_rows, plan_rows, run_batch

    rows = parse_rows("\n".join(f"a red fox, take {i}" for i in range(10)))
    async with Emulator(time_scale=SCALE, price_multiplier=2.0) as emu:
        settings = BatchSettings(
            policy="budget", budget=40.0, base_url=emu.base_url, loopback=True,
            time_scale=SCALE, create_limit=500, create_window=1.0, read_rate=1000.0,
        )  # fmt: skip
        plan = plan_rows(rows, settings, plugins=_plugins())
        assert plan.expected_credits <= 40 < 2 * plan.expected_credits
        out = tmp_path / "out"
        report = await run_batch(rows, out, settings, api_key=emu.api_key, plugins=_plugins())
        charged = emu.charges()["total"]
    assert report.budget_reached and not report.complete
    assert report.spent == pytest.approx(charged)
    assert 0 < charged <= 40


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Router([], budget=math.nan), "budget"),
        (lambda: Router([], budget=math.inf), "budget"),
        (lambda: Router([], budget=-1), "budget"),
        (lambda: Router([], latency_scale=math.nan), "latency_scale"),
        (lambda: Router([], latency_scale=math.inf), "latency_scale"),
        (lambda: kr.PollConfig(min_interval=math.nan), "min_interval"),
        (lambda: kr.PollConfig(watch_limit=math.inf), "watch_limit"),
        (lambda: kr.Budget(max_credits=math.nan), "max_credits"),
        (lambda: kr.Budget(deadline=math.inf), "deadline"),
        (lambda: kr.Constraints(max_latency=math.nan), "max_latency"),
        (lambda: kr.Objective(quality=math.inf), "quality"),
        (lambda: _batch_settings(budget=math.nan), "budget"),
        (lambda: _batch_settings(time_scale=math.nan), "time-scale"),
        (lambda: _batch_settings(create_window=math.inf), "create-window"),
    ],
)
def test_nan_and_infinity_are_refused_naming_the_field(make: Any, field: str) -> None:
    """NaN, infinities and negative budgets are refused by every library type, naming the
    field (a NaN budget used to turn the budget off)."""
    with pytest.raises(kr.ConfigurationError, match=field):
        make()


def _batch_settings(**kw: Any) -> None:
    from kierouter.batch import BatchSettings

    BatchSettings(**kw).check()


async def test_a_lost_first_create_does_not_hold_up_the_budget() -> None:
    """Under a budget the first task of a model runs alone until KIE says its price; when that
    create's answer is lost (the price will not be known), the other jobs go on at the card's
    price instead of waiting for ever."""
    async with Emulator(time_scale=SCALE) as emu:
        emu.inject("drop_connection", paths="create", count=1)
        async with _router(emu, budget=100) as router:
            first, second = await asyncio.wait_for(
                asyncio.gather(
                    router.generate("a red fox", policy=ONLY_SEEDREAM),
                    router.generate("a grey wolf", policy=ONLY_SEEDREAM),
                    return_exceptions=True,
                ),
                timeout=30,
            )
    assert isinstance(first, kr.AmbiguousSubmissionError)
    assert isinstance(second, kr.Result) and second.ok
