"""The legacy families' record shapes (GPT-4o image, Flux Kontext, Midjourney) and KIE's
answers for unknown or missing task ids on every record endpoint."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator


async def run(
    emu: Emulator,
    http: httpx.AsyncClient,
    create: str,
    record: str,
    body: dict[str, Any],
    wait: float = 10_000,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create, read once while pending, finish, read again; return both data objects."""
    answer = (await http.post(create, json=body)).json()
    assert answer["code"] == 200 and set(answer["data"]) == {"taskId"}
    task_id = answer["data"]["taskId"]
    emu.advance(1)  # past the visibility lag: the task can be read
    pending = (await http.get(record, params={"taskId": task_id})).json()["data"]
    emu.advance(wait)
    final = (await http.get(record, params={"taskId": task_id})).json()["data"]
    return pending, final


async def test_gpt4o_record_info(emu: Emulator, http: httpx.AsyncClient) -> None:
    """4o: successFlag 0→1, status strings, progress "0.05".."1.00", response.resultUrls."""
    body = {"prompt": "a shop sign that says OPEN", "size": "3:2", "nVariants": 4}
    pending, final = await run(
        emu, http, "/api/v1/gpt4o-image/generate", "/api/v1/gpt4o-image/record-info", body
    )
    assert (pending["successFlag"], pending["status"], pending["response"]) == (
        0,
        "GENERATING",
        None,
    )
    assert 0 < float(pending["progress"]) < 1 and len(pending["progress"]) == 4
    assert pending["completeTime"] is None
    assert (final["successFlag"], final["status"], final["progress"]) == (1, "SUCCESS", "1.00")
    assert len(final["response"]["resultUrls"]) == 4
    assert json.loads(final["paramJson"]) == body
    assert isinstance(final["createTime"], int) and final["completeTime"] > final["createTime"]
    png = await http.get(final["response"]["resultUrls"][0])
    assert png.content.startswith(b"\x89PNG")


async def test_gpt4o_failure(emu: Emulator, http: httpx.AsyncClient) -> None:
    """A failed 4o task: successFlag 2, GENERATE_FAILED, errorCode an int."""
    emu.configure("gpt4o-image", fail_rate=1.0, fail_code=400, fail_msg="prompt flagged")
    _, final = await run(
        emu, http, "/api/v1/gpt4o-image/generate", "/api/v1/gpt4o-image/record-info",
        {"prompt": "x", "size": "1:1"},
    )  # fmt: skip
    assert (final["successFlag"], final["status"]) == (2, "GENERATE_FAILED")
    assert (final["errorCode"], final["errorMessage"]) == (400, "prompt flagged")


async def test_flux_record_info(emu: Emulator, http: httpx.AsyncClient) -> None:
    """Flux: successFlag 0→1, one response.resultImageUrl plus originImageUrl."""
    body = {"prompt": "a cat in a hat", "model": "flux-kontext-max", "aspectRatio": "21:9"}
    pending, final = await run(
        emu, http, "/api/v1/flux/kontext/generate", "/api/v1/flux/kontext/record-info", body, 400
    )
    assert pending["successFlag"] == 0 and pending["response"] is None
    assert final["successFlag"] == 1
    result = await http.get(final["response"]["resultImageUrl"])
    origin = await http.get(final["response"]["originImageUrl"])
    assert result.content == origin.content and result.content.startswith(b"\x89PNG")
    assert emu.stats()["created"] == {"flux-kontext-max": 1}
    assert emu.stats()["credits_charged"] == 12


async def test_flux_failure_is_flag_3(emu: Emulator, http: httpx.AsyncClient) -> None:
    """A failed Flux generation reports successFlag 3 with its errorCode."""
    emu.configure("flux-kontext", fail_rate=1.0, fail_code=501)
    _, final = await run(
        emu, http, "/api/v1/flux/kontext/generate", "/api/v1/flux/kontext/record-info",
        {"prompt": "x"},
    )  # fmt: skip
    assert (final["successFlag"], final["errorCode"], final["response"]) == (3, 501, None)


async def test_flux_origin_link_expires_after_ten_minutes(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """originImageUrl stops working 10 emulated minutes after completion; the result does not."""
    _, final = await run(
        emu, http, "/api/v1/flux/kontext/generate", "/api/v1/flux/kontext/record-info",
        {"prompt": "x"}, 400,
    )  # fmt: skip
    assert (await http.get(final["response"]["originImageUrl"])).status_code == 200
    emu.advance(11 * 60)
    assert (await http.get(final["response"]["originImageUrl"])).status_code == 403
    assert (await http.get(final["response"]["resultImageUrl"])).status_code == 200


@pytest.mark.parametrize(("speed", "price"), [("relaxed", 12.5), ("fast", 25.0), ("turbo", 50.0)])
async def test_midjourney_record_info(
    emu: Emulator, http: httpx.AsyncClient, speed: str, price: float
) -> None:
    """MJ: 4 images as resultInfoJson.resultUrls[].resultUrl, priced per task by speed."""
    body = {"taskType": "mj_txt2img", "prompt": "a castle", "speed": speed, "version": "niji6"}
    pending, final = await run(emu, http, "/api/v1/mj/generate", "/api/v1/mj/record-info", body)
    assert pending["successFlag"] == 0 and pending["resultInfoJson"] is None
    assert final["successFlag"] == 1 and final["taskType"] == "mj_txt2img"
    urls = [item["resultUrl"] for item in final["resultInfoJson"]["resultUrls"]]
    assert len(urls) == len(set(urls)) == 4
    assert emu.stats()["credits_charged"] == price


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/gpt4o-image/record-info",
        "/api/v1/flux/kontext/record-info",
        "/api/v1/mj/record-info",
    ],
)
async def test_unknown_and_missing_task_ids(http: httpx.AsyncClient, path: str) -> None:
    """Legacy families: an unknown taskId answers code 200 with data null; a missing one 400."""
    unknown = await http.get(path, params={"taskId": "0123456789abcdef0123456789abcdef"})
    missing = await http.get(path)
    assert unknown.json() == {"code": 200, "msg": "success", "data": None}
    assert missing.status_code == 200 and missing.json()["code"] == 400


async def test_market_unknown_task_is_422_record_info_is_null(http: httpx.AsyncClient) -> None:
    """Market: an unknown taskId answers 422 "recordInfo is null" over HTTP 200; none is 400."""
    path = "/api/v1/jobs/recordInfo"
    unknown = await http.get(path, params={"taskId": "0123456789abcdef0123456789abcdef"})
    missing = await http.get(path)
    assert unknown.status_code == 200
    assert unknown.json() == {"code": 422, "msg": "recordInfo is null", "data": None}
    assert missing.status_code == 200 and missing.json()["code"] == 400


async def test_a_task_is_only_found_on_its_own_family(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """A Market task id read on the 4o endpoint is unknown there."""
    body = {"model": "google/nano-banana", "input": {"prompt": "x"}}
    task_id = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
    other = await http.get("/api/v1/gpt4o-image/record-info", params={"taskId": task_id})
    assert other.json()["data"] is None


async def test_unknown_route_is_404(http: httpx.AsyncClient) -> None:
    """A path KIE does not have answers code 404 in an HTTP 200 envelope (the sheet's invented
    routes, for instance), like every business error KIE answers."""
    answer = await http.post("/api/v1/seedream/generate", json={})
    assert answer.status_code == 200 and answer.json()["code"] == 404
