"""Result downloads: temp file then rename, type and size checks, redirects, re-minting links."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter import DownloadError
from kierouter._downloads import Downloader, safe_stem
from kierouter._images import encode_png
from kierouter._transport import KieClient
from kierouter.provider import MarketProvider

KEY = "sk-download-test-0123456789"
PNG = encode_png(4, 2, bytes(range(24)))
FILE_URL = "https://tempfile.aiquickdraw.test/r/abc.png"


class _Market(MarketProvider):
    def build_input(self, card: Any, request: Any, *, seed: int | None) -> Any:
        raise NotImplementedError


def _downloader(handler: Any, **kw: Any) -> Downloader:
    client = KieClient(KEY, base_url="https://kie.test", transport=httpx.MockTransport(handler))
    return Downloader(client, **kw)


def _png(request: httpx.Request) -> httpx.Response:
    assert "authorization" not in request.headers  # result files never see the API key
    return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


async def _chunks(data: bytes) -> Any:
    yield data[:2000]
    yield data[2000:]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_streams_hashes_and_renames_into_place(tmp_path: Path) -> None:
    """A PNG lands as {stem}.png with its sha256 and size; no temporary file remains."""
    downloader = _downloader(_png)
    file = await downloader.fetch(FILE_URL, tmp_path, "job-1-1")
    assert Path(file.path) == tmp_path / "job-1-1.png"
    assert _read(file.path) == PNG
    assert file.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (file.size, file.content_type, file.url) == (len(PNG), "image/png", FILE_URL)
    assert _leftovers(tmp_path) == ["job-1-1.png"]
    await downloader.client.aclose()


async def test_octet_stream_is_accepted_only_when_the_bytes_are_an_image(tmp_path: Path) -> None:
    """A CDN's application/octet-stream is fine for PNG bytes, refused for HTML bytes."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = PNG if request.url.path.endswith(".png") else b"<html>hi</html>"
        return httpx.Response(
            200, content=body, headers={"Content-Type": "application/octet-stream"}
        )

    downloader = _downloader(handler)
    file = await downloader.fetch(FILE_URL, tmp_path, "a")
    assert file.content_type == "image/png"
    with pytest.raises(DownloadError, match="not an image"):
        await downloader.fetch("https://cdn.test/page", tmp_path, "b")
    assert _leftovers(tmp_path) == ["a.png"]
    await downloader.client.aclose()


async def test_non_image_content_type_is_refused(tmp_path: Path) -> None:
    """An HTML error page served with 200 is not saved as an image."""
    downloader = _downloader(
        lambda r: httpx.Response(
            200, text="<html>oops</html>", headers={"Content-Type": "text/html"}
        )
    )
    with pytest.raises(DownloadError, match="text/html"):
        await downloader.fetch(FILE_URL, tmp_path, "x")
    assert _leftovers(tmp_path) == []
    await downloader.client.aclose()


@pytest.mark.parametrize("declare_length", [True, False])
async def test_size_cap(tmp_path: Path, declare_length: bool) -> None:
    """A file over the cap is refused, whether or not Content-Length announces it."""
    big = PNG + b"\0" * 5000

    def handler(request: httpx.Request) -> httpx.Response:
        if declare_length:
            return httpx.Response(200, content=big, headers={"Content-Type": "image/png"})
        return httpx.Response(200, content=_chunks(big), headers={"Content-Type": "image/png"})

    downloader = _downloader(handler, max_bytes=1000)
    with pytest.raises(DownloadError, match="cap"):
        await downloader.fetch(FILE_URL, tmp_path, "x")
    assert _leftovers(tmp_path) == []
    await downloader.client.aclose()


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://files.test/a.png", "javascript:alert(1)", "https:///x"]
)
async def test_only_http_urls(tmp_path: Path, url: str) -> None:
    """Only http(s) URLs with a host are fetched."""
    downloader = _downloader(_png)
    with pytest.raises(DownloadError, match="only http"):
        await downloader.fetch(url, tmp_path, "x")
    await downloader.client.aclose()


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8080/a.png",
        "http://localhost/a.png",
        "http://10.1.2.3/a.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/a.png",
    ],
)
async def test_redirects_to_private_addresses_are_refused(tmp_path: Path, target: str) -> None:
    """A redirect to loopback, private or link-local space is not followed."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "tempfile.aiquickdraw.test":
            return httpx.Response(302, headers={"Location": target})
        return _png(request)

    downloader = _downloader(handler)
    with pytest.raises(DownloadError, match="private or loopback"):
        await downloader.fetch(FILE_URL, tmp_path, "x")
    assert seen == [FILE_URL]
    await downloader.client.aclose()


async def test_private_addresses_allowed_for_the_emulator(tmp_path: Path) -> None:
    """allow_private=True follows a redirect to loopback (how the emulator serves files)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "tempfile.aiquickdraw.test":
            return httpx.Response(302, headers={"Location": "http://127.0.0.1:9/f.png"})
        return _png(request)

    downloader = _downloader(handler, allow_private=True)
    file = await downloader.fetch(FILE_URL, tmp_path, "x")
    assert file.size == len(PNG)
    await downloader.client.aclose()


async def test_redirect_loops_stop(tmp_path: Path) -> None:
    """A redirect loop ends with an error after a few hops."""
    downloader = _downloader(lambda r: httpx.Response(302, headers={"Location": FILE_URL}))
    with pytest.raises(DownloadError, match="too many redirects"):
        await downloader.fetch(FILE_URL, tmp_path, "x")
    await downloader.client.aclose()


@pytest.mark.parametrize("expired_status", [403, 404, 410])
async def test_expired_link_is_reminted_not_regenerated(
    tmp_path: Path, expired_status: int
) -> None:
    """A 403/404/410 result link is re-minted once through download-url, then fetched."""
    calls: list[tuple[str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.url.path, request.content))
        if request.url.path == "/api/v1/common/download-url":
            assert request.headers["authorization"] == f"Bearer {KEY}"
            fresh = "https://tempfile.aiquickdraw.test/fresh.png?sig=1"
            return httpx.Response(200, json={"code": 200, "msg": "success", "data": fresh})
        if request.url.path == "/fresh.png":
            return _png(request)
        return httpx.Response(expired_status, text="expired")

    downloader = _downloader(handler)
    file = await downloader.fetch(FILE_URL, tmp_path, "x", task_id="t1", provider=_Market())
    assert _read(file.path) == PNG
    assert [path for path, _ in calls] == [
        "/r/abc.png",
        "/api/v1/common/download-url",
        "/fresh.png",
    ]
    assert calls[1][1] == b'{"url":"' + FILE_URL.encode() + b'"}'
    assert downloader.stats["reminted"] == 1
    await downloader.client.aclose()


async def test_expired_link_that_cannot_be_reminted(tmp_path: Path) -> None:
    """When download-url answers 422 the error says the link expired; nothing is written."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/common/download-url":
            return httpx.Response(200, json={"code": 422, "msg": "url is wrong", "data": None})
        return httpx.Response(410)

    downloader = _downloader(handler)
    with pytest.raises(DownloadError, match="expired") as info:
        await downloader.fetch(FILE_URL, tmp_path, "x", task_id="t1", provider=_Market())
    assert info.value.expired
    assert _leftovers(tmp_path) == []
    await downloader.client.aclose()


async def test_server_errors_are_retried(tmp_path: Path) -> None:
    """A 503 from the file host is retried; the second try succeeds."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503) if len(calls) == 1 else _png(request)

    downloader = _downloader(handler)
    file = await downloader.fetch(FILE_URL, tmp_path, "x")
    assert file.size == len(PNG) and len(calls) == 2
    await downloader.client.aclose()


@pytest.mark.parametrize("stem", ["../../etc/passwd", "/abs/path", "..", "a/../../b", "\x00x", ""])
async def test_file_names_cannot_escape_the_folder(tmp_path: Path, stem: str) -> None:
    """Whatever the job key, the file lands directly inside the output folder."""
    out = tmp_path / "out"
    downloader = _downloader(_png)
    file = await downloader.fetch(FILE_URL, out, stem)
    assert Path(file.path).parent == out
    assert not Path(file.path).name.startswith(".")
    assert os.listdir(tmp_path) == ["out"]
    await downloader.client.aclose()


def test_safe_stem() -> None:
    """safe_stem keeps letters, digits, dot, dash and underscore only."""
    assert safe_stem("row-12:step 1") == "row-12_step_1"
    assert safe_stem("...") == "image"
    assert "/" not in safe_stem("a/b\\c")
