"""The emulator's core loop over real HTTP: create, poll, download, credit, auth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from kierouter._images import decode_png, sniff
from kierouter.sim import Emulator

SEEDREAM = {
    "model": "seedream/5-lite-text-to-image",
    "input": {
        "prompt": "A serene mountain landscape at sunrise, photorealistic",
        "aspect_ratio": "16:9",
        "quality": "basic",
        "nsfw_checker": False,
    },
}


async def poll(http: httpx.AsyncClient, task_id: str, path: str = "/api/v1/jobs/recordInfo") -> Any:
    """Poll a status endpoint until the task is final; return ``data``."""
    for _ in range(500):
        # ``data`` is null right after the create (KIE's read lag): read again
        data = (await http.get(path, params={"taskId": task_id})).json()["data"] or {}
        if data.get("state") in ("success", "fail") or data.get("successFlag", 0) != 0:
            return data
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} never finished")


async def test_market_task_runs_to_a_downloadable_png(kie_emulator: Emulator) -> None:
    """A recorded seedream body creates a task that succeeds with a real PNG of ratio 16:9."""
    headers = {"Authorization": f"Bearer {kie_emulator.api_key}"}
    async with httpx.AsyncClient(base_url=kie_emulator.base_url, headers=headers) as http:
        created = (await http.post("/api/v1/jobs/createTask", json=SEEDREAM)).json()
        task_id = created["data"]["taskId"]
        assert created["data"]["recordId"] == task_id
        data = await poll(http, task_id)
        assert data["state"] == "success"
        (url,) = json.loads(data["resultJson"])["resultUrls"]
        image = await http.get(url)
    assert image.headers["content-type"] == "image/png"
    info = sniff(image.content)
    assert (info.format, info.width, info.height) == ("png", 192, 108)
    assert decode_png(image.content).channels == 3


async def test_credit_falls_by_the_price_of_a_successful_task() -> None:
    """The balance drops by the model's price only once its task succeeds."""
    async with Emulator(time_scale=1000, credits=100.0) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as http:
            task_id = (await http.post("/api/v1/jobs/createTask", json=SEEDREAM)).json()["data"][
                "taskId"
            ]
            await poll(http, task_id)
            credit = (await http.get("/api/v1/chat/credit")).json()
    assert credit == {"code": 200, "msg": "success", "data": 94.5}
    assert emu.stats()["credits_charged"] == 5.5


async def test_unknown_key_gets_401(kie_emulator: Emulator) -> None:
    """A wrong or missing key is refused with KIE's 401 message."""
    async with httpx.AsyncClient(base_url=kie_emulator.base_url) as http:
        wrong = await http.get("/api/v1/chat/credit", headers={"Authorization": "Bearer nope"})
        missing = await http.get("/api/v1/chat/credit")
    for response in (wrong, missing):
        assert response.status_code == 200  # KIE's business errors come over HTTP 200
        assert response.json() == {
            "code": 401,
            "msg": "You do not have access permissions",
            "data": None,
        }
    assert kie_emulator.stats()["rejected"]["401"] == 2
