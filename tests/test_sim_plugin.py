"""kierouter.testing: the opt-in pytest plugin's fixtures and run_task, as a plugin author
would use them (registered for this repository in the root conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import kierouter as kr
from kierouter._transport import KieClient
from kierouter.provider import MarketProvider
from kierouter.sim import Emulator
from kierouter.testing import run_task


class NanoBanana(MarketProvider):
    """A minimal Market provider, as a plugin author would write one."""

    def build_input(
        self, card: kr.ModelCard, request: kr.ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[kr.Adaptation], bool]:
        return {"prompt": request.prompt, "aspect_ratio": request.aspect_ratio or "1:1"}, [], False


CARD = kr.ModelCard(
    id="google/nano-banana",
    family="nano-banana",
    task_kinds=("generate",),
    pricing=kr.Pricing(credits=4),
    latency_p50=15,
    latency_p90=30,
    quality=7.5,
)


async def test_run_task_reaches_success(kie_client: KieClient, kie_emulator: Emulator) -> None:
    """run_task creates a task on the emulator and returns its parsed successful status."""
    status = await run_task(kie_client, NanoBanana(), CARD, kr.ImageRequest(prompt="a red fox"))
    assert status.state == "success" and len(status.urls) == 1
    assert status.urls[0].startswith(kie_emulator.base_url)
    assert kie_emulator.stats()["created"] == {"google/nano-banana": 1}


async def test_run_task_reports_failure(kie_client: KieClient, kie_emulator: Emulator) -> None:
    """A failing model gives a failed status with KIE's failCode."""
    kie_emulator.configure("nano-banana", fail_rate=1.0, fail_code=501)
    status = await run_task(kie_client, NanoBanana(), CARD, kr.ImageRequest(prompt="a red fox"))
    assert (status.state, status.fail_code) == ("failed", "501")


async def test_run_task_times_out(kie_client: KieClient, kie_emulator: Emulator) -> None:
    """A task that never finishes raises TaskTimeoutError after the timeout."""
    kie_emulator.configure("*", never_finish_rate=1.0)
    with pytest.raises(kr.TaskTimeoutError):
        await run_task(kie_client, NanoBanana(), CARD, kr.ImageRequest(prompt="x"), timeout=0.2)


async def test_kie_client_errors_map_through(kie_client: KieClient, kie_emulator: Emulator) -> None:
    """Emulator answers go through KieClient's error mapping (402 → InsufficientCreditsError)."""
    kie_emulator.set(credits=1)
    with pytest.raises(kr.InsufficientCreditsError):
        await run_task(kie_client, NanoBanana(), CARD, kr.ImageRequest(prompt="x"))
    assert await kie_client.credits() == 1.0


def test_in_thread_serves_synchronous_callers() -> None:
    """in_thread runs the emulator on a background loop; controls work from the calling thread."""
    from kierouter.sim import in_thread

    body = {"model": "google/nano-banana", "input": {"prompt": "x"}}
    with in_thread(time_scale=1e-6) as emu:
        emu.configure("nano-banana", latency=(10, 10))
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(base_url=emu.base_url, headers=headers) as http:
            task_id = http.post("/api/v1/jobs/createTask", json=body).json()["data"]["taskId"]
            emu.advance(11)
            state = http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()
        stats = emu.stats()
    assert state["data"]["state"] == "success"
    assert stats["succeeded"] == 1 and stats["created_total"] == 1
