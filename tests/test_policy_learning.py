"""Learned success rates through a real Router run against the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from kierouter import ImageRequest
from kierouter._router import PollConfig, Router
from kierouter._transport import KieClient
from kierouter.policy import Constraints, OutcomeStats, Policy
from kierouter.sim import Emulator

SCALE = 200.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
TWO = Policy(
    name="two-rungs",
    ladder=("seedream", "nano-banana"),
    constraints=Constraints(allow=(SEEDREAM, NANO)),
)


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


async def test_router_learns_per_model_and_intent(tmp_path: Any) -> None:
    """Seedream failing every text prompt is recorded under (model, text) as unbilled (KIE
    charges no failed task); explain then shows the lowered P(billed) and P(success), 'learned
    from N outcomes', and a longer expected time."""
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        emu.configure(SEEDREAM, fail_rate=1.0)
        client = KieClient(emu.api_key, base_url=emu.base_url, create_limit=500, create_window=1)
        router = Router(
            _plugins(),
            client=client,
            latency_scale=1 / SCALE,
            allow_private_downloads=True,
            poll=PollConfig(retry_backoff=0.5),
        )
        try:
            prompt = 'a shop sign that says "OPEN"'
            before = router.explain(prompt, policy=TWO)
            for _ in range(3):
                result = await router.generate(prompt, policy=TWO)
                assert result.served_model == NANO
        finally:
            await router.aclose()
            await client.aclose()
    stats = router.stats
    assert isinstance(stats, OutcomeStats)
    assert stats.counts(SEEDREAM, "text") == (0, 3)
    assert stats.tally(SEEDREAM, "text") == (0, 0, 3)
    assert stats.tally(NANO, "text") == (3, 3, 3)
    assert stats.counts(SEEDREAM, "edit") == (0, 0)
    after = router.explain(prompt, policy=TWO)
    first = {s.model: s for s in after.steps}[SEEDREAM]
    assert "learned from 3 outcomes (text)" in first.reason
    assert first.p_success == first.p_billed == pytest.approx(10 * 0.9 / 13)
    assert after.p_success < before.p_success
    assert after.expected_seconds > before.expected_seconds
    plain = router.explain(ImageRequest(prompt="a fox"), policy=TWO)
    assert "learned from 3 outcomes (generate)" in plain.steps[0].reason


async def test_router_learns_judge_rejections_as_billed(tmp_path: Any) -> None:
    """Seedream's images are produced (and billed) but the judge rejects each one: the learned
    stats count them as billed and not accepted, so the expected cost of trying Seedream again
    includes the credits its rejected images cost (a failed task would be free)."""
    from kierouter import Verdict
    from kierouter.judging import JudgeContext

    async def no_seedream(context: JudgeContext) -> Verdict:
        accepted = context.model != SEEDREAM
        return Verdict(accepted=accepted, reason="" if accepted else "not this one")

    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        client = KieClient(emu.api_key, base_url=emu.base_url, create_limit=500, create_window=1)
        router = Router(
            _plugins(),
            client=client,
            latency_scale=1 / SCALE,
            allow_private_downloads=True,
            poll=PollConfig(retry_backoff=0.5),
        )
        try:
            for i in range(2):
                result = await router.generate(
                    'a shop sign that says "OPEN"',
                    policy=TWO,
                    judge=no_seedream,
                    out_dir=tmp_path / str(i),
                )
                assert result.served_model == NANO
        finally:
            await router.aclose()
            await client.aclose()
    stats = router.stats
    assert isinstance(stats, OutcomeStats)
    assert stats.tally(SEEDREAM, "text") == (0, 2, 2)
    assert stats.tally(NANO, "text") == (2, 2, 2)
    billed, accept, n, tag = stats.rates(SEEDREAM, 0.9, ("generate", "text"))
    assert (n, tag) == (2, "text")
    assert billed == pytest.approx((10 * 0.9 + 2) / 12)
    assert accept == pytest.approx(10 / 12)
