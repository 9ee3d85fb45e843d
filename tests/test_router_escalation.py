"""The run loop against the emulator: escalation, judges, one shared budget, failure classes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import kierouter as kr
from kierouter import ImageRequest, ModelCard, Pricing, Verdict
from kierouter._router import PollConfig, Router
from kierouter._transport import KieClient
from kierouter.judging import JudgeContext
from kierouter.policy import Budget, Constraints, Policy
from kierouter.provider import MarketProvider
from kierouter.sim import Emulator

SCALE = 200.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
#: Exactly two rungs, one model each, whatever else the plugins register.
TWO = Constraints(allow=(SEEDREAM, NANO))
BUDGET_LADDER = Policy(name="two-rungs", ladder=("seedream", "nano-banana"), constraints=TWO)


def _plugins() -> list[Any]:
    """The real Seedream and Nano Banana plugins, registered in-process."""
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emulator:
        yield emulator


@pytest.fixture
async def make_router(emu: Emulator) -> AsyncIterator[Callable[..., Router]]:
    clients: list[KieClient] = []
    routers: list[Router] = []

    def factory(**kw: Any) -> Router:
        client = KieClient(
            kw.pop("api_key", emu.api_key),
            base_url=emu.base_url,
            create_limit=500,
            create_window=1.0,
        )
        clients.append(client)
        kw.setdefault("poll", PollConfig(retry_backoff=0.5))
        router = Router(
            [*_plugins(), *kw.pop("extra_plugins", [])],
            client=client,
            latency_scale=1 / SCALE,
            allow_private_downloads=True,
            **kw,
        )
        routers.append(router)
        return router

    yield factory
    for router in routers:
        await router.aclose()
    for client in clients:
        await client.aclose()


def _is_png(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


async def test_failing_seedream_escalates_to_nano_banana(
    emu: Emulator, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """With Seedream failing, a budget job is served by Nano Banana; credits match the emulator."""
    emu.configure("seedream", fail_rate=1.0)
    router = make_router()
    result = await router.generate("a red fox in snow", policy="budget", out_dir=tmp_path)
    assert result.served_model == NANO
    models = [a.model for a in result.attempts]
    assert models[0].startswith(("bytedance/seedream", "seedream/")), models
    assert models[-1] == NANO
    failed = result.attempts[0]
    assert failed.outcome == "failed"
    assert "500" in failed.reason and "internal error" in failed.reason
    assert result.attempts[-1].outcome == "success"
    assert (
        result.credits == emu.stats()["credits_charged"] == sum(a.credits for a in result.attempts)
    )
    assert result.credits == 4.0
    assert len(result.files) == 1 and _is_png(result.files[0].path)
    assert Path(result.files[0].path).parent == tmp_path


async def test_judge_rejection_escalates_and_is_paid(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """A judge rejecting Seedream's image sends the job to Nano Banana; both images are paid."""
    seen: list[str] = []

    def picky(context: JudgeContext) -> Verdict:
        seen.append(context.model)
        assert context.files, "the judge gets downloaded files even without out_dir"
        return Verdict(context.model == NANO, "too dull")

    router = make_router(judge=picky)
    result = await router.generate("a red fox", policy=BUDGET_LADDER)
    assert seen == [SEEDREAM, NANO]
    assert [(a.model, a.outcome, a.reason) for a in result.attempts] == [
        (SEEDREAM, "rejected", "too dull"),
        (NANO, "success", ""),
    ]
    assert result.credits == 7.5 == emu.stats()["credits_charged"]
    assert result.files == ()  # no out_dir: the judge's scratch copies are gone


async def test_budget_exhausted_lists_the_attempts(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """With max_attempts=1, a rejected first image stops the job with BudgetExhaustedError."""
    tight = Policy(
        name="tight",
        ladder=("seedream", "nano-banana"),
        constraints=TWO,
        budget=Budget(max_attempts=1),
    )
    router = make_router(judge=lambda context: Verdict(False, "not good enough"))
    with pytest.raises(kr.BudgetExhaustedError) as info:
        await router.generate("a red fox", policy=tight)
    assert [a.outcome for a in info.value.attempts] == ["rejected"]
    assert "max_attempts (1)" in str(info.value)
    assert SEEDREAM in str(info.value) and "not good enough" in str(info.value)
    assert emu.stats()["created_total"] == 1


async def test_credit_budget_skips_steps_that_do_not_fit(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """max_credits=5: after a rejected 3.5-credit image, the 4-credit rung no longer fits."""
    capped = Policy(
        name="capped",
        ladder=("seedream", "nano-banana"),
        constraints=TWO,
        budget=Budget(max_credits=5),
    )
    router = make_router(judge=lambda context: Verdict(False, "no"))
    with pytest.raises(kr.BudgetExhaustedError) as info:
        await router.generate("a red fox", policy=capped)
    outcomes = [(a.model, a.outcome) for a in info.value.attempts]
    assert outcomes == [(SEEDREAM, "rejected"), (NANO, "skipped")]
    assert "max_credits" in info.value.attempts[1].reason
    assert emu.stats()["created"] == {SEEDREAM: 1}


async def test_every_rung_failing_raises_job_failed(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """When every model fails, JobFailedError lists each attempt with its reason."""
    emu.configure("*", fail_rate=1.0, fail_code=501, fail_msg="generation failed")
    router = make_router()
    with pytest.raises(kr.JobFailedError) as info:
        await router.generate("a red fox", policy=BUDGET_LADDER)
    assert [(a.model, a.outcome) for a in info.value.attempts] == [
        (SEEDREAM, "failed"),
        (NANO, "failed"),
    ]
    assert "generation failed" in str(info.value)
    assert emu.stats()["credits_charged"] == 0


class _Strict(MarketProvider):
    """A provider that refuses every request, as a plugin does for a field its model lacks."""

    def build_input(self, card: ModelCard, request: ImageRequest, *, seed: int | None) -> Any:
        raise kr.ValidationError("aspect_ratio", "not supported", allowed=("1:1",), model=card.id)


class _StrictPlugin:
    name = "strict-test-plugin"

    @kr.hookimpl
    def kierouter_register_models(self, register: Any) -> None:
        card = ModelCard(
            id="test/strict",
            family="strict",
            task_kinds=("generate",),
            pricing=Pricing(credits=1),
            latency_p50=5,
            latency_p90=10,
            quality=5,
            languages=("*",),
        )
        register(card, _Strict())


async def test_invalid_for_one_model_is_skipped_before_billing(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """A request one plugin refuses is skipped there (no create) and served by the next rung."""
    router = make_router(extra_plugins=[_StrictPlugin()])
    strict_first = Policy(name="strict-first", ladder=("strict", "nano-banana"))
    result = await router.generate("a red fox", policy=strict_first)
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("test/strict", "skipped"),
        (NANO, "success"),
    ]
    assert "aspect_ratio" in result.attempts[0].reason
    assert emu.stats()["created"] == {NANO: 1}


async def test_transient_create_errors_retry_the_same_model(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """A 500 and a 455 on create are retried on the same model; each counts as an attempt."""
    emu.inject("http_500", paths="create", count=1)
    emu.inject("code_455", paths="create", count=1)
    events: list[kr.Event] = []
    router = make_router(event_sinks=[events.append])
    result = await router.generate("a red fox", policy=BUDGET_LADDER)
    assert result.served_model == SEEDREAM
    assert [a.outcome for a in result.attempts] == ["error", "error", "success"]
    assert [e.kind for e in events].count("retried") == 2
    assert emu.stats()["created"] == {SEEDREAM: 1}


async def test_retries_share_the_budget(emu: Emulator, make_router: Callable[..., Router]) -> None:
    """Retries draw on the same max_attempts as escalations: 2 attempts, then the job stops."""
    emu.inject("http_500", paths="create")
    two = Policy(
        name="two",
        ladder=("seedream", "nano-banana"),
        constraints=TWO,
        budget=Budget(max_attempts=2),
    )
    router = make_router()
    with pytest.raises(kr.BudgetExhaustedError) as info:
        await router.generate("a red fox", policy=two)
    assert len(info.value.attempts) == 2
    assert emu.stats()["rejected"].get("500", 0) + emu.stats()["created_total"] >= 2


async def test_content_policy_stop_or_escalate(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """A flagged prompt stops the job under on_content_policy='stop' and escalates otherwise."""
    emu.configure("seedream", fail_rate=1.0, fail_code=400, fail_msg="content policy violation")
    stop = Policy(
        name="stop", ladder=("seedream", "nano-banana"), constraints=TWO, on_content_policy="stop"
    )
    router = make_router()
    with pytest.raises(kr.JobFailedError, match="content policy"):
        await router.generate("a red fox", policy=stop)
    assert emu.stats()["created"] == {SEEDREAM: 1}
    result = await router.generate("a red fox", policy=BUDGET_LADDER)
    assert result.served_model == NANO


async def test_insufficient_credits_stops_with_a_clear_error(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """With an empty account the job stops on 402 and does not try other models."""
    emu.set(credits=0)
    router = make_router()
    with pytest.raises(kr.InsufficientCreditsError, match="Top up"):
        await router.generate("a red fox", policy=BUDGET_LADDER)
    assert emu.stats()["created_total"] == 0


async def test_bad_key_stops_and_never_leaks(
    emu: Emulator, make_router: Callable[..., Router], caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong key raises AuthError; neither it nor repr(router) nor the logs contain the key."""
    secret = "sk-live-this-must-never-leak-42"
    router = make_router(api_key=secret)
    with caplog.at_level("DEBUG"), pytest.raises(kr.AuthError) as info:
        await router.generate("a red fox", policy=BUDGET_LADDER)
    assert secret not in str(info.value)
    assert all(secret not in a.reason for a in info.value.__dict__.get("attempts", ()))
    assert secret not in repr(router)
    assert secret not in caplog.text
    assert len(emu.stats()["created"]) == 0


async def test_cooldown_is_shared_by_jobs(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """After three failures of Seedream, the next job skips it as cooling down."""
    emu.configure("seedream", fail_rate=1.0)
    router = make_router()
    await asyncio.gather(*(router.generate("a red fox", policy=BUDGET_LADDER) for _ in range(3)))
    result = await router.generate("a red fox", policy=BUDGET_LADDER)
    assert result.attempts[0].outcome == "skipped"
    assert "cooling down" in result.attempts[0].reason
    assert emu.stats()["created"][SEEDREAM] == 3


async def test_seeds_per_rung(emu: Emulator, make_router: Callable[..., Router]) -> None:
    """Rung 0 sends the user's seed; a seedless model records seed_ignored."""
    emu.configure("seedream", fail_rate=1.0)
    router = make_router()
    result = await router.generate(ImageRequest(prompt="a fox", seed=42), policy=BUDGET_LADDER)
    first, last = result.attempts
    assert (first.model, first.seed, first.seed_ignored) == (SEEDREAM, 42, False)
    assert (last.model, last.seed, last.seed_ignored) == (NANO, None, True)
    assert result.seed == 42


async def test_events_cover_every_step(emu: Emulator, make_router: Callable[..., Router]) -> None:
    """Sinks see planned → created → polled → failed → escalated → … → finished; a raising
    sink is isolated."""
    emu.configure("seedream", fail_rate=1.0)
    events: list[kr.Event] = []

    def broken(event: kr.Event) -> None:
        raise RuntimeError("sink bug")

    router = make_router(event_sinks={"list": events.append, "broken": broken}, judge="basic")
    result = await router.generate(
        ImageRequest(prompt="a fox", aspect_ratio="1:1"), policy=BUDGET_LADDER
    )
    kinds = [e.kind for e in events]
    for kind in (
        "planned",
        "created",
        "polled",
        "failed",
        "escalated",
        "downloaded",
        "judged",
        "finished",
    ):
        assert kind in kinds, kind
    assert kinds[0] == "planned" and kinds[-1] == "finished"
    assert {e.job_key for e in events} == {result.job_key}


async def test_explain_makes_no_call(emu: Emulator, make_router: Callable[..., Router]) -> None:
    """explain() returns the plan without touching the network."""
    router = make_router()
    plan = router.explain("a red fox", policy=BUDGET_LADDER)
    assert plan.models[:2] == (SEEDREAM, NANO)
    assert emu.stats()["created_total"] == 0 and emu.stats()["status_reads"] == 0


async def test_bad_requests_fail_before_any_call(
    emu: Emulator, make_router: Callable[..., Router]
) -> None:
    """An empty prompt or a bad job key raises ValidationError and sends nothing."""
    router = make_router()
    with pytest.raises(kr.ValidationError, match="prompt"):
        await router.generate("   ")
    with pytest.raises(kr.ValidationError, match="job_key"):
        await router.generate("a fox", job_key="../escape")
    assert emu.stats()["created_total"] == 0
