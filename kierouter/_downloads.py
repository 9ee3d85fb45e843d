"""Fetch result images safely, as soon as a task succeeds.

KIE's result links expire (20-minute download links; files kept for days), so a result is fetched
in the same step that sees ``success``. Each file is streamed to a temporary file inside the output
folder, checked (size cap, an ``image/*`` type, the format's end mark: a transfer cut short is
fetched again), hashed, then renamed into place, so a crash never leaves a half-written image
under its final name. Names come from the job key and the image index,
sanitised so they can never leave the output folder.

Only ``http``/``https`` URLs are fetched. Redirects are followed by hand, at most a few, and never
to a private, loopback or link-local address unless ``allow_private=True``, or the host is one of
``allow_hosts`` (the router adds KIE's own host when its base URL is on loopback or a private
network: an emulator serves its images there). A link that answers 403/404/410 is re-minted once
through the provider's download-url endpoint; a result is never regenerated. A disk that refuses
the file (full, read-only) is a :class:`~kierouter.DownloadError` like any other, never a bare
``OSError``. Files are fetched with ``client.http``, which carries no API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._errors import DownloadError, KieError, TransportError
from ._hosts import is_private_host, normal_host
from ._models import ImageFile

if TYPE_CHECKING:
    import httpx

    from ._transport import KieClient
    from .provider import Provider

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Downloader",
    "image_extension",
    "safe_stem",
]

#: Largest result file accepted (a 4K PNG is well under this).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_EXPIRED = {403, 404, 410}
_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
}
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
#: Image types whose files start with a signature :func:`_sniff` knows.
_SNIFFABLE = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/bmp"}
)
#: Image types that can carry scripts: never saved.
_ACTIVE = frozenset({"image/svg+xml", "image/svg"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(text: str, *, limit: int = 120) -> str:
    """A file-name stem made of ``[A-Za-z0-9._-]`` only, never ``.``/``..`` or hidden."""
    stem = _UNSAFE.sub("_", text).strip("._") or "image"
    return stem[:limit]


def _sniff(prefix: bytes) -> str | None:
    for magic, ctype in _MAGIC:
        if prefix.startswith(magic):
            return ctype
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "image/webp"
    return None


def _whole(content_type: str, prefix: bytes, tail: bytes, size: int) -> bool:
    """Whether an image's bytes end where its format says (a transfer cut short does not):
    PNG's IEND chunk, JPEG's end-of-image marker, GIF's trailer, WebP's RIFF length. Types
    without such a mark pass."""
    if content_type == "image/png":
        return tail.endswith(b"IEND\xaeB`\x82")
    if content_type in ("image/jpeg", "image/jpg"):
        return b"\xff\xd9" in tail  # some encoders leave a few bytes after the marker
    if content_type == "image/gif":
        return tail.endswith(b";")
    if content_type == "image/webp":
        return int.from_bytes(prefix[4:8], "little") + 8 == size
    return True


def image_extension(content_type: str) -> str:
    """File extension for an image content type (``.img`` when unknown)."""
    return _TYPES.get(content_type, ".img")


class Downloader:
    """Downloads result files for a router. Strictly private; see the module docstring."""

    def __init__(
        self,
        client: KieClient,
        *,
        allow_private: bool = False,
        allow_hosts: Iterable[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        attempts: int = 3,
        retry_wait: float = 0.2,
    ) -> None:
        self.client = client
        self.allow_private = allow_private
        #: hosts fetched even on a private address (KIE's own host when it is an emulator)
        self.allow_hosts = frozenset(normal_host(h) for h in allow_hosts)
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.attempts = attempts
        #: seconds before the second quick try of a file; doubles per try (at most 10x)
        self.retry_wait = retry_wait
        #: Counters a test or benchmark can read.
        self.stats = {"files": 0, "bytes": 0, "reminted": 0}

    def __repr__(self) -> str:
        return f"<Downloader allow_private={self.allow_private} max_bytes={self.max_bytes}>"

    async def fetch(
        self,
        url: str,
        dest_dir: str | os.PathLike[str],
        stem: str,
        *,
        task_id: str | None = None,
        provider: Provider | None = None,
        remint: bool = False,
    ) -> ImageFile:
        """Download ``url`` into ``dest_dir`` as ``{safe stem}{ext}`` and return what was saved.

        An expired link (403/404/410) is re-minted once through ``provider``'s download-url
        endpoint; ``remint=True`` asks for a fresh link before the first try (a retry of a link
        that kept failing). Raises :class:`~kierouter.DownloadError` when the file cannot be
        fetched safely or saved.
        """
        directory = Path(dest_dir)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise _disk_error(directory, url, exc) from None
        current = url
        reminted = False
        if remint and provider is not None:
            with contextlib.suppress(DownloadError):  # no fresh link: the old one may still do
                current = await self._remint(url, task_id, provider)
                reminted = True
        failures = 0
        while True:
            try:
                return await self._fetch_once(current, url, directory, safe_stem(stem))
            except DownloadError as exc:
                if exc.expired and not reminted and provider is not None:
                    current = await self._remint(url, task_id, provider)
                    reminted = True
                    continue
                raise
            except _Retry as exc:
                failures += 1
                if failures >= self.attempts:
                    raise DownloadError(f"could not fetch {_short(url)}: {exc}", url=url) from None
                await asyncio.sleep(min(self.retry_wait * 2**failures, 10 * self.retry_wait))

    async def _remint(self, url: str, task_id: str | None, provider: Provider) -> str:
        body = provider.download_url_body(task_id or "", url)
        try:
            fresh = await self.client.download_url(url, path=provider.download_url_path, body=body)
        except (KieError, TransportError) as exc:
            raise DownloadError(
                f"result link expired and download-url could not re-mint it: {exc}",
                url=url,
                expired=True,
            ) from None
        self.stats["reminted"] += 1
        return fresh

    async def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadError(
                f"refusing to fetch {_short(url)}: only http(s) URLs", url=url, permanent=True
            )
        host = normal_host(parts.hostname)
        if not self.allow_private and host not in self.allow_hosts and await is_private_host(host):
            raise DownloadError(
                f"refusing to fetch {_short(url)}: it points to a private or loopback address "
                "(set allow_private_downloads=True only for a local emulator)",
                url=url,
                permanent=True,
            )

    async def _fetch_once(self, url: str, original: str, directory: Path, stem: str) -> ImageFile:
        import httpx

        current = url
        for _ in range(self.max_redirects + 1):
            await self._check_url(current)
            try:
                async with self.client.http.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise DownloadError(f"redirect without Location from {_short(current)}")
                        try:
                            current = str(httpx.URL(current).join(location))
                        except (httpx.InvalidURL, ValueError):
                            raise DownloadError(
                                f"refusing to follow {_short(location)}: only http(s) URLs",
                                url=original,
                                permanent=True,
                            ) from None
                        continue
                    if response.status_code in _EXPIRED:
                        raise DownloadError(
                            f"result link {_short(original)} answered HTTP {response.status_code}",
                            url=original,
                            expired=True,
                        )
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _Retry(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise DownloadError(
                            f"{_short(original)} answered HTTP {response.status_code}",
                            url=original,
                        )
                    return await self._save(response, original, directory, stem)
            except httpx.InvalidURL as exc:  # e.g. httpx parsing a redirect to "data:,..."
                raise DownloadError(
                    f"refusing to fetch from {_short(current)}: {exc} (only http(s) URLs)",
                    url=original,
                    permanent=True,
                ) from None
            except httpx.HTTPError as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}") from None
        raise DownloadError(
            f"too many redirects from {_short(original)}", url=original, permanent=True
        )

    async def _save(
        self, response: httpx.Response, url: str, directory: Path, stem: str
    ) -> ImageFile:
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise DownloadError(
                f"{_short(url)} is {int(length)} bytes, over the {self.max_bytes}-byte cap",
                url=url,
                permanent=True,
            )
        declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
        temp = directory / f".{stem}.{secrets.token_hex(4)}.part"
        digest = hashlib.sha256()
        size = 0
        prefix = b""
        tail = b""
        try:
            with _disk(directory, url), temp.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadError(
                            f"{_short(url)} is over the {self.max_bytes}-byte cap",
                            url=url,
                            permanent=True,
                        )
                    if len(prefix) < 16:
                        prefix += chunk[: 16 - len(prefix)]
                    tail = (tail + chunk)[-16:]
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise DownloadError(f"{_short(url)} returned an empty file", url=url)
            content_type = self._content_type(declared, prefix, url)
            if not _whole(content_type, prefix, tail, size):
                raise DownloadError(f"{_short(url)} was cut short ({size} bytes)", url=url)
            final = directory / f"{stem}{image_extension(content_type)}"
            # safe_stem already allows no separators; this guards future changes to it.
            if final.parent != directory or final.name.startswith("."):
                raise DownloadError(
                    f"file name {final.name!r} escapes the output folder", url=url, permanent=True
                )
            with _disk(directory, url):
                os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self.stats["files"] += 1
        self.stats["bytes"] += size
        return ImageFile(
            path=str(final),
            url=url,
            sha256=digest.hexdigest(),
            size=size,
            content_type=content_type,
        )

    @staticmethod
    def _content_type(declared: str, prefix: bytes, url: str) -> str:
        sniffed = _sniff(prefix)
        if declared in _ACTIVE:
            raise DownloadError(
                f"{_short(url)} is {declared}, not a raster image", url=url, permanent=True
            )
        if declared.startswith("image/"):
            if sniffed is None and declared in _SNIFFABLE:
                # The label says PNG/JPEG/GIF/WebP/BMP but the bytes are something else.
                raise DownloadError(
                    f"{_short(url)} is labelled {declared} but its bytes are not an image",
                    url=url,
                )
            return sniffed or declared
        # Some CDNs label images as octet-stream: accept only if the bytes are an image.
        if declared in ("", "application/octet-stream", "binary/octet-stream") and sniffed:
            return sniffed
        raise DownloadError(f"{_short(url)} is {declared or 'untyped'}, not an image", url=url)


class _Retry(Exception):
    """A transient download failure (5xx, connection error): try again. Strictly private."""


def _disk_error(directory: Path, url: str, exc: OSError) -> DownloadError:
    why = exc.strerror or type(exc).__name__
    return DownloadError(f"could not save {_short(url)} into {directory}: {why}", url=url)


@contextlib.contextmanager
def _disk(directory: Path, url: str) -> Iterator[None]:
    """Turn the disk refusing a write (full, read-only, gone) into a DownloadError."""
    try:
        yield
    except OSError as exc:
        raise _disk_error(directory, url, exc) from None


def _short(url: str, limit: int = 120) -> str:
    # Presigned links carry long signatures; the start of the URL is enough to identify it.
    return url if len(url) <= limit else url[:limit] + "…"
