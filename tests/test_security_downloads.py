"""Download attacks beyond tests/test_download_safety.py: direct and disguised private addresses,
redirects to other schemes, content types that lie, symlinks planted under the output name, and
a Router that refuses a loopback result URL unless told it talks to an emulator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter import DownloadError
from kierouter._downloads import Downloader
from kierouter._images import encode_png
from kierouter._transport import KieClient

KEY = "sk-download-attack-0123456789"
PNG = encode_png(4, 2, bytes(range(24)))
FILE_URL = "https://tempfile.aiquickdraw.test/r/abc.png"


def _downloader(handler: Any, **kw: Any) -> Downloader:
    client = KieClient(KEY, base_url="https://kie.test", transport=httpx.MockTransport(handler))
    return Downloader(client, **kw)


def _png(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})


def _inspect(path: str) -> tuple[bool, bytes]:
    """Whether ``path`` is a symlink, and its bytes."""
    return Path(path).is_symlink(), Path(path).read_bytes()


PRIVATE = [
    "http://127.0.0.1/a.png",
    "http://127.1/a.png",
    "http://2130706433/a.png",
    "http://0.0.0.0/a.png",
    "http://[::ffff:127.0.0.1]/a.png",
    "http://[fd00::1]/a.png",
    "http://[fe80::1]/a.png",
    "http://192.168.1.1/a.png",
    "http://172.16.0.1/a.png",
    "http://100.64.0.1/a.png",
    "http://localhost./a.png",
    "http://LOCALHOST/a.png",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/a.png",
]


@pytest.mark.parametrize("target", PRIVATE)
@pytest.mark.parametrize("via", ["direct", "redirect"])
async def test_private_and_disguised_loopback_addresses_are_refused(
    tmp_path: Path, target: str, via: str, reliability: Any
) -> None:
    """Loopback, private, link-local, CGNAT and metadata addresses, spelled plainly or disguised
    (short, decimal, IPv4-mapped, trailing dot), are never fetched, directly or by redirect."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "tempfile.aiquickdraw.test":
            return httpx.Response(302, headers={"Location": target})
        return _png(request)

    downloader = _downloader(handler)
    start = FILE_URL if via == "redirect" else target
    with pytest.raises(DownloadError, match="private or loopback"):
        await downloader.fetch(start, tmp_path, "x")
    assert seen == ([FILE_URL] if via == "redirect" else [])
    assert os.listdir(tmp_path) == []
    await downloader.client.aclose()
    reliability.record(
        "downloads", f"private/loopback target ({via})", tried=1, outcome="refused, nothing fetched"
    )


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://files.test/a.png", "gopher://x/", "data:,hi"]
)
async def test_redirect_to_another_scheme_is_refused(
    tmp_path: Path, location: str, reliability: Any
) -> None:
    """A redirect from an https result link to a non-http(s) scheme is not followed."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    downloader = _downloader(handler)
    with pytest.raises(DownloadError, match="only http"):
        await downloader.fetch(FILE_URL, tmp_path, "x")
    assert seen == [FILE_URL]
    await downloader.client.aclose()
    reliability.record("downloads", "redirect to a non-http(s) scheme", tried=1, outcome="refused")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", PNG),
        ("application/json", b'{"resultUrls": []}'),
        ("image/png", b"<html><script>alert(1)</script></html>"),
        ("image/jpeg", b"MZ\x90\x00 an executable"),
        ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>'),
        ("application/octet-stream", b"#!/bin/sh\nrm -rf /\n"),
    ],
)
async def test_content_that_is_not_an_image_is_refused(
    tmp_path: Path, content_type: str, body: bytes, reliability: Any
) -> None:
    """A body is saved only when it is an image: a non-image type is refused, and so is an
    image type whose bytes are HTML, an executable or active SVG; nothing is left behind."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    downloader = _downloader(handler)
    with pytest.raises(DownloadError, match=r"not an image|not a"):
        await downloader.fetch(FILE_URL, tmp_path, "x")
    assert os.listdir(tmp_path) == []
    await downloader.client.aclose()
    reliability.record(
        "downloads", "wrong or lying content type", tried=1, outcome="refused, no file left"
    )


async def test_planted_symlink_under_the_output_name_is_replaced_not_followed(
    tmp_path: Path, reliability: Any
) -> None:
    """A symlink planted at the output name pointing outside the folder is replaced by the
    image; the file it pointed at is untouched."""
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "job-1.png").symlink_to(victim)
    downloader = _downloader(_png)
    file = await downloader.fetch(FILE_URL, out, "job-1")
    assert Path(file.path) == out / "job-1.png"
    assert _inspect(file.path) == (False, PNG)
    assert _inspect(str(victim)) == (False, b"keep me")
    await downloader.client.aclose()
    reliability.record(
        "downloads", "symlink planted at the output name", tried=1, outcome="replaced, not followed"
    )


@pytest.mark.parametrize(
    "stem", ["..\\..\\windows", "a" * 5000, "‮gnp.exe", "con", " ", "~/.ssh/id_rsa", "%2e%2e%2f"]
)
async def test_odd_job_keys_stay_inside_the_folder(
    tmp_path: Path, stem: str, reliability: Any
) -> None:
    """Backslashes, huge, bidi-override, reserved and home-relative names land inside the
    output folder with a short, visible name."""
    out = tmp_path / "out"
    downloader = _downloader(_png)
    file = await downloader.fetch(FILE_URL, out, stem)
    path = Path(file.path)
    assert path.parent == out and not path.name.startswith(".")
    assert len(path.name) <= 130
    assert os.listdir(tmp_path) == ["out"]
    await downloader.client.aclose()
    reliability.record(
        "downloads", "hostile output names", tried=1, outcome="kept inside the folder"
    )


class _Via(httpx.AsyncBaseTransport):
    """Sends requests for ``kie.test`` (a public-looking KIE) to the emulator; the rest as is."""

    def __init__(self, target: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._target = httpx.URL(target)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "kie.test":
            request.url = request.url.copy_with(
                scheme=self._target.scheme, host=self._target.host, port=self._target.port
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_router_refuses_loopback_results_unless_allowed(
    tmp_path: Path, reliability: Any
) -> None:
    """A Router talking to a public KIE refuses result URLs on loopback and says why (the job
    is paid, so it ends undelivered, nothing created again); with allow_private_downloads it
    saves them; and a Router whose KIE base URL is itself on loopback (an emulator) saves
    results from that host without being told."""
    import kierouter_seedream

    import kierouter as kr
    from kierouter._router import Router
    from kierouter.policy import Constraints, Policy
    from kierouter.sim import Emulator

    model = "bytedance/seedream-v4-text-to-image"
    policy = Policy(name="one", ladder=("seedream",), constraints=Constraints(allow=(model,)))
    async with Emulator(time_scale=1000.0) as emu:
        for case in ("public", "allowed", "emulator"):
            client = KieClient(
                emu.api_key,
                base_url=emu.base_url if case == "emulator" else "https://kie.test",
                transport=_Via(emu.base_url),
            )
            router = Router(
                [kierouter_seedream],
                client=client,
                latency_scale=1 / 1000.0,
                allow_private_downloads=case == "allowed",
                out_dir=tmp_path / case,
            )
            async with router:
                if case != "public":
                    result = await router.generate("a red fox", policy=policy)
                    assert [Path(f.path).parent for f in result.files] == [tmp_path / case]
                    continue
                with pytest.raises(kr.PaidUndeliveredError) as info:
                    await router.generate("a red fox", policy=policy)
            await client.aclose()
            assert "private or loopback" in str(info.value)
            assert info.value.result.urls and info.value.result.task_id
            assert not list((tmp_path / "public").glob("*.png"))
        assert emu.stats()["created_total"] == 3  # one task per case: none created again
    reliability.record(
        "downloads",
        "Router fetching loopback results without allow_private",
        tried=1,
        outcome="refused with the reason (job undelivered, nothing created again); allowed "
        "for the emulator",
    )
