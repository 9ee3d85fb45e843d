"""Result files, link expiry, download-url (common and 4o) and uploads served back."""

from __future__ import annotations

import json

import httpx

from kierouter.sim import Emulator


async def finished_url(emu: Emulator, http: httpx.AsyncClient) -> tuple[str, str]:
    """Run one Market task to success; return its task id and result URL."""
    body = {"model": "google/nano-banana", "input": {"prompt": "a fox"}}
    task_id = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
    emu.advance(1000)
    data = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()["data"]
    return task_id, json.loads(data["resultJson"])["resultUrls"][0]


async def test_result_link_expires_and_download_url_mints_a_new_one(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    """After 24 emulated hours the link answers 403; download-url gives a 20-minute link."""
    _, url = await finished_url(emu, http)
    first = await httpx.AsyncClient().get(url)  # no key needed for files
    emu.advance(24 * 3600 + 1)
    expired = await http.get(url)
    minted = (await http.post("/api/v1/common/download-url", json={"url": url})).json()
    fresh = await http.get(minted["data"])
    emu.advance(21 * 60)
    stale = await http.get(minted["data"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert expired.status_code == 403
    assert minted["code"] == 200 and isinstance(minted["data"], str)
    assert fresh.content == first.content
    assert stale.status_code == 403


async def test_download_url_refuses_unknown_files(emu: Emulator, http: httpx.AsyncClient) -> None:
    """Only the emulator's own result files can be re-minted; anything else is 422."""
    _, url = await finished_url(emu, http)
    for bad in (url.replace("/0.png", "/7.png"), "https://tempfile.aiquickdraw.com/r/x.png"):
        answer = (await http.post("/api/v1/common/download-url", json={"url": bad})).json()
        assert answer == {"code": 422, "msg": "url is wrong", "data": None}
    missing = (await http.post("/api/v1/common/download-url", json={})).json()
    assert missing["code"] == 422


async def test_unknown_file_is_404(emu: Emulator, http: httpx.AsyncClient) -> None:
    """A file path the emulator never made answers 404."""
    answer = await http.get("/files/0123456789abcdef0123456789abcdef/0.png")
    assert answer.status_code == 404


async def test_gpt4o_download_url_reasons(emu: Emulator, http: httpx.AsyncClient) -> None:
    """The 4o variant needs taskId and url and says why it refuses."""
    body = {"prompt": "x", "size": "1:1"}
    task_id = (await http.post("/api/v1/gpt4o-image/generate", json=body)).json()["data"]["taskId"]
    path = "/api/v1/gpt4o-image/download-url"

    async def ask(payload: dict[str, str]) -> dict[str, object]:
        result: dict[str, object] = (await http.post(path, json=payload)).json()
        return result

    not_done = await ask({"taskId": task_id, "url": "https://x.example/a.png"})
    emu.advance(1000)
    record = await http.get("/api/v1/gpt4o-image/record-info", params={"taskId": task_id})
    url = record.json()["data"]["response"]["resultUrls"][0]
    ok = await ask({"taskId": task_id, "url": url})
    unknown = await ask({"taskId": "f" * 32, "url": url})
    wrong = await ask({"taskId": task_id, "url": "https://x.example/a.png"})
    no_task = await ask({"url": url})
    assert not_done["msg"] == "record status is not success"
    assert unknown["msg"] == "record is null"
    assert (wrong["code"], no_task["code"]) == (422, 422)
    assert ok["code"] == 200
    assert (await http.get(str(ok["data"]))).content.startswith(b"\x89PNG")
    emu.advance(15 * 86400)
    old = await ask({"taskId": task_id, "url": url})
    assert old["msg"] == "Temporarily supports records within 14 days"


async def test_url_upload_copies_emulator_files(emu: Emulator, http: httpx.AsyncClient) -> None:
    """file-url-upload of an emulator result stores the same bytes under /uploads/."""
    _, url = await finished_url(emu, http)
    original = (await http.get(url)).content
    answer = await http.post(
        "/api/file-url-upload",
        json={"fileUrl": url, "uploadPath": "images/in", "fileName": "a.png"},
    )
    data = answer.json()["data"]
    assert answer.json()["success"] is True
    assert data["filePath"].endswith("images/in/a.png") and data["fileSize"] == len(original)
    assert (await http.get(data["downloadUrl"])).content == original
    emu.advance(3 * 86400 + 1)
    assert (await http.get(data["downloadUrl"])).status_code == 403


async def test_upload_errors(http: httpx.AsyncClient) -> None:
    """Uploads without their required fields or with bad base64 answer code 400."""
    missing_path = await http.post("/api/file-base64-upload", json={"base64Data": "aGk="})
    bad_base64 = await http.post(
        "/api/file-base64-upload", json={"base64Data": "***", "uploadPath": "x"}
    )
    no_file = await http.post("/api/file-stream-upload", data={"uploadPath": "x"}, files={})
    escape = await http.post(
        "/api/file-base64-upload", json={"base64Data": "aGk=", "uploadPath": "../etc"}
    )
    for answer in (missing_path, bad_base64, no_file, escape):
        assert answer.json()["code"] == 400


async def test_data_uri_upload_takes_its_mime_type(http: httpx.AsyncClient) -> None:
    """A data URI's media type becomes the upload's mimeType."""
    answer = await http.post(
        "/api/file-base64-upload",
        json={"base64Data": "data:image/webp;base64,UklGRg==", "uploadPath": "x", "fileName": "a"},
    )
    assert answer.json()["data"]["mimeType"] == "image/webp"
