"""The plugin works end to end against kierouter's KIE emulator, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from kierouter import ImageRequest, KieClient, Policy, Router
from kierouter.sim import CATALOG, Emulator
from kierouter.testing import run_task

import kierouter_example
from kierouter_example import CARD, MODEL_ID, WanProvider

# The emulator ships some Market models (wan/2-7-image among them); any other model, such as
# yours once you change MODEL_ID, is taught to it by the rules in kie-scenario.toml.
SCENARIO = Path(__file__).parents[1] / "kie-scenario.toml"
pytestmark = [] if MODEL_ID in CATALOG else [pytest.mark.kie_scenario(SCENARIO)]


async def test_generate_on_the_emulator(kie_client: KieClient, kie_emulator: Emulator) -> None:
    """A task created from the plugin's body succeeds and yields an image URL."""
    status = await run_task(kie_client, WanProvider(), CARD, ImageRequest(prompt="a red fox"))
    assert status.state == "success" and len(status.urls) == 1
    assert kie_emulator.stats()["created"] == {MODEL_ID: 1}


async def test_edit_on_the_emulator(kie_client: KieClient) -> None:
    """An edit with two reference images and two outputs succeeds."""
    request = ImageRequest(
        prompt="make it night",
        images=("https://example.com/a.png", "https://example.com/b.png"),
        count=2,
    )
    status = await run_task(kie_client, WanProvider(), CARD, request)
    assert status.state == "success" and len(status.urls) == 2


async def test_failed_task_is_reported(kie_client: KieClient, kie_emulator: Emulator) -> None:
    """When the model fails, the parsed status says so with KIE's code."""
    kie_emulator.configure(MODEL_ID, fail_rate=1.0)
    status = await run_task(kie_client, WanProvider(), CARD, ImageRequest(prompt="a red fox"))
    assert status.state == "failed" and status.fail_code


async def test_router_serves_a_job_with_the_plugin(kie_emulator: Emulator, tmp_path: Path) -> None:
    """A Router given only this plugin routes to its model and downloads the image, under the
    default policy (auto ranks every installed model when none of the shipped ones is there)
    and under a policy naming the plugin's family."""
    async with Router(
        plugins=[kierouter_example],
        base_url=kie_emulator.base_url,
        api_key=kie_emulator.api_key,
        out_dir=tmp_path,
        allow_private_downloads=True,  # the emulator serves results on 127.0.0.1
        latency_scale=1 / 1000,  # kie_emulator runs at time_scale=1000
    ) as router:
        chosen = await router.generate("a red fox in snow")
        named = await router.generate("a red fox", policy=Policy(name="own", ladder=(CARD.family,)))
    for result in (chosen, named):
        assert result.served_model == MODEL_ID
        assert [f.content_type for f in result.files] == ["image/png"]
        assert all(Path(f.path).is_relative_to(tmp_path) for f in result.files)
