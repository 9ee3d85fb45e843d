"""The Uploader: KIE's upload API as recorded, once per content, cached, retried like a read."""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import stamina

from kierouter import (
    AuthError,
    ConfigurationError,
    ImageRequest,
    KieClient,
    MemoryUploadCache,
    ServerError,
    SqliteUploadCache,
    UploadedFile,
    Uploader,
    UploadError,
    ValidationError,
)
from kierouter._images import encode_png
from kierouter._uploads import DEFAULT_UPLOAD_URL, UPLOAD_REUSE
from kierouter.sim import Emulator

RECORDINGS = Path(__file__).parent / "fixtures" / "kie-recordings"
FIXTURES = Path(__file__).parent / "fixtures" / "images"


def recorded(name: str) -> dict[str, Any]:
    """The one exchange of a recording file."""
    exchange: dict[str, Any] = json.loads((RECORDINGS / name).read_text())["exchanges"][0]
    return exchange


def png(path: Path, rgb: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> Path:
    """Write a solid-colour PNG and return its path."""
    path.write_bytes(encode_png(size, size, bytes(rgb) * size * size))
    return path


@pytest.fixture
async def client(kie_emulator: Emulator) -> AsyncIterator[KieClient]:
    """A client of the emulator (uploads go to its own host)."""
    async with KieClient(kie_emulator.api_key, base_url=kie_emulator.base_url) as kie:
        yield kie


# -- the wire, as recorded ---------------------------------------------------------------------


async def test_a_small_file_goes_as_base64_json_with_the_recorded_fields(tmp_path: Path) -> None:
    """POST /api/file-base64-upload with base64Data, uploadPath, fileName, mimeType, the key;
    the recorded answer's downloadUrl is the URL returned."""
    exchange = recorded("file-uploads__base64.json")
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=exchange["response"])

    photo = png(tmp_path / "photo.png")
    async with KieClient("k" * 32, transport=httpx.MockTransport(answer)) as kie:
        uploader = Uploader(kie)
        file = await uploader.upload(photo)
    (request,) = sent
    assert str(request.url) == f"{DEFAULT_UPLOAD_URL}/api/file-base64-upload"
    assert request.headers["authorization"] == "Bearer " + "k" * 32
    body = json.loads(request.content)
    assert set(body) == set(exchange["request"])
    assert body["mimeType"] == "image/png" and body["uploadPath"] == "kierouter"
    assert body["fileName"] == file.sha256[:16] + ".png"
    assert body["base64Data"] == base64.b64encode(photo.read_bytes()).decode()
    assert file.url == exchange["response"]["data"]["downloadUrl"]
    assert (file.size, file.mime, file.reused) == (photo.stat().st_size, "image/png", False)


async def test_a_large_file_is_streamed_as_multipart(tmp_path: Path) -> None:
    """Over stream_threshold: POST /api/file-stream-upload with file, uploadPath, fileName."""
    exchange = recorded("file-uploads__stream.json")
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        request.read()
        return httpx.Response(200, json=exchange["response"])

    photo = tmp_path / "photo.jpg"
    shutil.copy(FIXTURES / "orange.jpg", photo)
    async with KieClient("k" * 32, transport=httpx.MockTransport(answer)) as kie:
        file = await Uploader(kie, stream_threshold=100).upload(photo)
    (request,) = sent
    assert request.url.path == "/api/file-stream-upload"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert set(parts) == {"file", "uploadPath", "fileName"}
    assert parts["file"].get_payload(decode=True) == photo.read_bytes()
    assert parts["file"].get_content_type() == "image/jpeg"
    assert parts["fileName"].get_payload(decode=True) == f"{file.sha256[:16]}.jpg".encode()
    assert file.url == exchange["response"]["data"]["downloadUrl"]


# -- against the emulator ------------------------------------------------------------------------


async def test_the_uploaded_bytes_are_what_the_url_serves(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """Base64 and stream uploads both give a URL serving exactly the file's bytes."""
    photo = png(tmp_path / "photo.png")
    jpeg = FIXTURES / "teal.jpg"
    small = await Uploader(client).upload(photo)
    streamed = await Uploader(client, stream_threshold=0).upload(jpeg)
    async with httpx.AsyncClient() as http:
        assert (await http.get(small.url)).content == photo.read_bytes()
        assert (await http.get(streamed.url)).content == jpeg.read_bytes()
    stats = kie_emulator.stats()
    assert stats["uploads_by_endpoint"] == {"base64": 1, "stream": 1}
    assert stats["upload_bytes"] == photo.stat().st_size + jpeg.stat().st_size


async def test_ten_concurrent_uses_of_one_content_upload_it_once(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """Ten callers at once, through two paths holding the same bytes: one upload, one URL."""
    first = png(tmp_path / "a.png")
    second = tmp_path / "b.png"
    shutil.copy(first, second)
    uploader = Uploader(client)
    files = await asyncio.gather(*(uploader.upload(p) for p in [first, second] * 5))
    assert len({f.url for f in files}) == 1
    assert kie_emulator.stats()["uploads"] == 1
    assert uploader.counts == {"uploaded": 1, "reused": 9}
    assert sum(not f.reused for f in files) == 1


async def test_resolve_swaps_local_inputs_for_urls_and_keeps_urls(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """Images and mask that are files or bytes become upload URLs; a URL stays as it was."""
    photo = png(tmp_path / "photo.png")
    request = ImageRequest(
        prompt="x",
        images=[photo, "https://example.com/a.png", (FIXTURES / "orange.jpg").read_bytes()],
        mask=photo,
    )
    resolved = await Uploader(client).resolve(request)
    assert resolved.images[1] == "https://example.com/a.png"
    assert resolved.images[0] == resolved.mask
    assert all(url.startswith(kie_emulator.base_url) for url in (*resolved.images[::2],))
    assert (resolved.prompt, resolved.kind) == (request.prompt, request.kind)
    assert kie_emulator.stats()["uploads"] == 2
    only_urls = ImageRequest(prompt="x", images=["https://example.com/a.png"])
    assert await Uploader(client).resolve(only_urls) is only_urls


async def test_a_remembered_upload_is_reused_until_close_to_kie_retention(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """A cached URL younger than reuse_for is reused; an older one is uploaded again."""
    photo = png(tmp_path / "photo.png")
    cache = MemoryUploadCache()
    first = await Uploader(client, cache=cache).upload(photo)
    again = await Uploader(client, cache=cache).upload(photo)
    assert (again.url, again.reused) == (first.url, True)
    assert kie_emulator.stats()["uploads"] == 1
    aged = msgspec.structs.replace(first, uploaded_at=time.time() - UPLOAD_REUSE - 1)
    cache.put(Uploader(client).base_url, aged)
    fresh = await Uploader(client, cache=cache).upload(photo)
    assert not fresh.reused
    assert kie_emulator.stats()["uploads"] == 2
    assert UPLOAD_REUSE < 3 * 24 * 3600  # a margin before KIE deletes the file


async def test_a_sqlite_cache_is_shared_by_later_uploaders(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """A second uploader (another run) on the same cache file reuses the first one's upload."""
    photo = png(tmp_path / "photo.png")
    path = tmp_path / "cache" / "uploads.sqlite"
    first = Uploader(client, cache=SqliteUploadCache(path))
    file = await first.upload(photo)
    first.close()
    second = Uploader(client, cache=SqliteUploadCache(path))
    assert await second.upload(photo) == msgspec.structs.replace(file, reused=True)
    second.close()
    assert kie_emulator.stats()["uploads"] == 1


async def test_an_upload_fault_is_retried(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """Two 500s, a dropped connection and a garbled answer, then success: one file uploaded."""
    kie_emulator.inject("code_500", count=2, paths="upload")
    kie_emulator.inject("drop_connection", count=1, paths="upload")
    kie_emulator.inject("malformed_body", count=1, paths="upload")
    with stamina.set_testing(True, attempts=5):
        file = await Uploader(client).upload(png(tmp_path / "photo.png"))
    assert file.url.startswith(kie_emulator.base_url)
    stats = kie_emulator.stats()
    assert stats["faults"] == {"code_500": 2, "drop_connection": 1, "malformed_body": 1}
    assert stats["created_total"] == 0


async def test_an_upload_that_keeps_failing_is_reported_naming_the_file(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """After its retries, an UploadError naming the field and the file, carrying KIE's error."""
    kie_emulator.inject("http_500", paths="upload")
    photo = png(tmp_path / "photo.png")
    uploader = Uploader(client)
    with stamina.set_testing(True, attempts=3), pytest.raises(UploadError) as info:
        await uploader.resolve(ImageRequest(prompt="x", images=["https://a/b.png", photo]))
    assert info.value.field == "images[1]" and info.value.file == str(photo)
    assert isinstance(info.value.cause, ServerError)
    assert str(photo) in str(info.value) and "no task was created" in str(info.value)
    assert kie_emulator.stats()["faults"]["http_500"] == 3
    assert uploader.counts["uploaded"] == 0


async def test_a_refused_key_is_an_auth_error_not_an_upload_error(
    kie_emulator: Emulator, tmp_path: Path
) -> None:
    """401 on an upload stops like any call with a bad key would (AuthError)."""
    async with KieClient("wrong-key-123", base_url=kie_emulator.base_url) as kie:
        with pytest.raises(AuthError):
            await Uploader(kie).upload(png(tmp_path / "photo.png"))


async def test_a_url_or_a_bad_file_is_refused_before_sending(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path
) -> None:
    """upload() of a URL, a missing file or a text file: ValidationError, nothing sent."""
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    uploader = Uploader(client)
    for source in ("https://example.com/a.png", tmp_path / "missing.png", text):
        with pytest.raises(ValidationError):
            await uploader.upload(source)
    assert kie_emulator.stats()["uploads"] == 0


def test_the_upload_host_follows_an_emulator_and_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KIE's upload host by default; the API host when not api.kie.ai; env and argument win."""
    monkeypatch.delenv("KIE_UPLOAD_URL", raising=False)
    monkeypatch.delenv("KIE_BASE_URL", raising=False)
    assert Uploader(KieClient("k")).base_url == DEFAULT_UPLOAD_URL
    emulated = KieClient("k", base_url="http://127.0.0.1:8799/")
    assert Uploader(emulated).base_url == "http://127.0.0.1:8799"
    monkeypatch.setenv("KIE_BASE_URL", "http://127.0.0.1:9000")
    assert Uploader(KieClient("k")).base_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("KIE_UPLOAD_URL", "https://uploads.example/")
    assert Uploader(emulated).base_url == "https://uploads.example"
    assert Uploader(emulated, base_url="http://u:1/").base_url == "http://u:1"


def test_uploaded_file_is_plain_data() -> None:
    """An UploadedFile encodes to JSON (the CLI prints it; caches store it)."""
    file = UploadedFile(url="https://u/x.png", sha256="ab", size=3, mime="image/png", uploaded_at=1)
    assert msgspec.json.decode(msgspec.json.encode(file), type=UploadedFile) == file


async def test_no_key_is_a_configuration_error_not_an_upload_error(tmp_path: Path) -> None:
    """Without a key nothing is sent and the error says to set one (not 'could not upload')."""
    async with KieClient("", base_url="http://127.0.0.1:9") as kie:
        with pytest.raises(ConfigurationError, match="KIE_API_KEY"):
            await Uploader(kie).upload(png(tmp_path / "photo.png"))


class BrokenCache:
    """A cache whose storage fails on every call (a locked or full disk)."""

    def get(self, host: str, sha256: str) -> UploadedFile | None:
        raise OSError("disk I/O error")

    def put(self, host: str, file: UploadedFile) -> None:
        raise OSError("disk I/O error")


async def test_a_failing_cache_costs_uploads_not_the_job(
    client: KieClient, kie_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache that cannot be read or written is logged; the file is uploaded all the same."""
    file = await Uploader(client, cache=BrokenCache()).upload(png(tmp_path / "photo.png"))
    assert file.url.startswith(kie_emulator.base_url)
    assert "could not be read" in caplog.text and "could not remember" in caplog.text
