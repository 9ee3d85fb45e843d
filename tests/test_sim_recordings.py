"""Replays of real recorded api.kie.ai exchanges against the emulator: every answer has the
recorded shape (field names, JSON types, nesting, and the shapes inside string-encoded JSON)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator

RECORDINGS = Path(__file__).parent / "fixtures" / "kie-recordings"
MARKET = sorted(
    p.name
    for p in RECORDINGS.glob("*.json")
    if any(e["path"] == "/api/v1/jobs/createTask" for e in json.loads(p.read_text())["exchanges"])
)
# JSON carried inside strings, as KIE encodes it
ENCODED = {"param", "input", "resultJson"}


def load(name: str) -> list[dict[str, Any]]:
    """The exchanges of one recording."""
    exchanges: list[dict[str, Any]] = json.loads((RECORDINGS / name).read_text())["exchanges"]
    return exchanges


def shape(value: Any, key: str = "") -> Any:
    """A value's shape: dict keys, JSON type names, list element shapes, decoded inner JSON."""
    if key in ENCODED and isinstance(value, str) and value:
        return ("json-string", shape(json.loads(value)))
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return ["list", *sorted({json.dumps(shape(v)) for v in value})]
    return type(value).__name__


def assert_same_shape(ours: Any, recorded: Any) -> None:
    """Fail with both shapes when they differ."""
    assert shape(ours) == shape(recorded), (
        f"\nours:     {json.dumps(shape(ours))}\nrecorded: {json.dumps(shape(recorded))}"
    )


@pytest.fixture
async def emulator() -> Any:
    """An emulator whose clock only moves when told (time_scale tiny), answering recordInfo in
    exactly the recorded shape (no ``creditsConsumed``/``updateTime``)."""
    async with Emulator(time_scale=1e-6, credits_in_status=False) as emu:
        yield emu


@pytest.mark.parametrize("name", MARKET)
async def test_market_recording_replays_with_recorded_shapes(emulator: Emulator, name: str) -> None:
    """Each recorded create, pending recordInfo and final recordInfo has the recorded shape."""
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    exchanges = load(name)
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        task_id = None
        for exchange in exchanges:
            if exchange["path"] == "/api/v1/chat/credit":
                answer = (await http.get("/api/v1/chat/credit")).json()
            elif exchange["path"] == "/api/v1/jobs/createTask":
                reply = await http.post("/api/v1/jobs/createTask", json=exchange["request"])
                assert reply.status_code == exchange["status"] == 200
                answer = reply.json()
                task_id = answer["data"]["taskId"]
                assert answer["data"]["recordId"] == task_id
                emulator.advance(1)  # past the visibility lag
            else:
                recorded_state = exchange["response"]["data"]["state"]
                if recorded_state == "success":
                    emulator.advance(10_000)
                reply = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
                answer = reply.json()
                data = answer["data"]
                assert (data["state"] == "success") == (recorded_state == "success")
                inner = json.loads(json.loads(data["param"])["input"])
                assert inner == json.loads(
                    json.loads(exchange["response"]["data"]["param"])["input"]
                )
                if recorded_state == "success":
                    recorded_urls = json.loads(exchange["response"]["data"]["resultJson"])
                    urls = json.loads(data["resultJson"])["resultUrls"]
                    assert len(urls) == len(recorded_urls["resultUrls"])
            assert_same_shape(answer, exchange["response"])


async def test_recorded_create_bodies_all_reach_a_final_record(emulator: Emulator) -> None:
    """Every recorded createTask body (including create-only recordings) finishes with images."""
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        ids = []
        for name in MARKET:
            for exchange in load(name):
                if exchange["path"] == "/api/v1/jobs/createTask":
                    reply = await http.post("/api/v1/jobs/createTask", json=exchange["request"])
                    ids.append(reply.json()["data"]["taskId"])
        emulator.advance(10_000)
        for task_id in ids:
            data = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()
            urls = json.loads(data["data"]["resultJson"])["resultUrls"]
            png = await http.get(urls[0])
            assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert emulator.stats()["created_total"] == len(ids) == len(MARKET)


@pytest.mark.parametrize("name", ["credit.json", "credits.json"])
async def test_credit_recording_has_recorded_shape(emulator: Emulator, name: str) -> None:
    """GET /api/v1/chat/credit answers a bare fractional number in data."""
    (exchange,) = load(name)
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        answer = (await http.get(exchange["path"])).json()
    assert_same_shape(answer, exchange["response"])


async def test_download_url_for_a_foreign_file_is_refused_as_recorded(emulator: Emulator) -> None:
    """A URL KIE did not generate gets exactly the recorded 422 "url is wrong" over HTTP 200."""
    (exchange,) = load("download-url__convert.json")
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        reply = await http.post(exchange["path"], json=exchange["request"])
    assert reply.status_code == 200
    assert reply.json() == exchange["response"]


@pytest.mark.parametrize("name", ["file-base64-upload.json", "file-uploads__base64.json"])
async def test_base64_upload_recording_replays(emulator: Emulator, name: str) -> None:
    """A recorded base64 upload answers the recorded shape, name, size and type, and is served."""
    (exchange,) = load(name)
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        answer = (await http.post(exchange["path"], json=exchange["request"])).json()
        served = await http.get(answer["data"]["downloadUrl"])
    recorded = exchange["response"]["data"]
    assert_same_shape(answer, exchange["response"])
    for field in ("fileName", "fileSize", "mimeType"):
        assert answer["data"][field] == recorded[field]
    assert answer["data"]["filePath"].endswith(recorded["filePath"].split("/", 2)[2])
    assert served.content == base64.b64decode(exchange["request"]["base64Data"])


async def test_stream_upload_recording_replays(emulator: Emulator) -> None:
    """A multipart upload without a fileName gets a generated name like the recorded one."""
    (exchange,) = load("file-uploads__stream.json")
    (png_upload,) = load("file-uploads__base64.json")
    png = base64.b64decode(png_upload["request"]["base64Data"])
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        reply = await http.post(
            exchange["path"],
            data={"uploadPath": "images/test-uploads"},
            files={"file": ("blob", png, "image/png")},
        )
        answer = reply.json()
        served = await http.get(answer["data"]["downloadUrl"])
    assert_same_shape(answer, exchange["response"])
    assert re.fullmatch(r"\d{13}-[a-z0-9]{11}\.png", answer["data"]["fileName"])
    assert answer["data"]["fileSize"] == exchange["response"]["data"]["fileSize"] == len(png)
    assert answer["data"]["mimeType"] == "image/png"
    assert served.content == png
