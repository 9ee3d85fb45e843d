"""Judges see what was sent: the request as the plugin adapted it (the ratio it snapped to)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kierouter as kr
from kierouter import ImageRequest, Router, Verdict
from kierouter.judging import JudgeContext
from kierouter.sim import Emulator

SCALE = 500.0


def _plugins() -> list[Any]:
    import kierouter_flux_kontext
    import kierouter_gpt4o_image
    import kierouter_midjourney
    import kierouter_nano_banana
    import kierouter_seedream

    return [
        kierouter_seedream, kierouter_nano_banana, kierouter_flux_kontext,
        kierouter_gpt4o_image, kierouter_midjourney,
    ]  # fmt: skip


async def test_basic_judge_checks_the_ratio_the_model_was_sent(tmp_path: Path) -> None:
    """A 4:1 request on a model that draws 21:9 at most: the basic judge accepts the 21:9 image
    the model was asked for, so one task serves the job (it used to reject every model's
    snapped image and pay four tasks for nothing)."""
    seen: list[JudgeContext] = []

    async def watching(context: JudgeContext) -> Verdict:
        seen.append(context)
        return await kr.BasicJudge()(context)

    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        client = kr.KieClient(emu.api_key, base_url=emu.base_url, read_rate=1000)
        router = Router(
            _plugins(), client=client, latency_scale=1 / SCALE, allow_private_downloads=True
        )
        async with router:
            result = await router.generate(
                ImageRequest(prompt="a long banner of a red fox", aspect_ratio="4:1"),
                policy="budget",
                judge=watching,
                out_dir=tmp_path,
            )
        assert emu.stats()["created_total"] == 1
    (context,) = seen
    assert context.request.aspect_ratio == "4:1"
    assert context.sent is not None and context.sent.aspect_ratio != "4:1"
    assert context.asked is context.sent
    assert [a.field for a in context.adaptations] == ["aspect_ratio"]
    assert result.delivery == "downloaded"
