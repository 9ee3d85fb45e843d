"""Uploading local input images to KIE, once per distinct content, after planning.

::

    uploader = Uploader(client)                       # a Router builds one: router.uploads
    request = await uploader.resolve(request)         # local files and bytes -> KIE URLs
    file = await uploader.upload("photo.png")         # one file -> UploadedFile(url=...)

KIE's upload API (KIE-API.md §3.8) lives on its own host (``https://kieai.redpandaai.co``); an
emulator serves it on its API host. Small files go as JSON (``POST /api/file-base64-upload``),
large ones as a multipart stream (``POST /api/file-stream-upload``); the answer's
``data.downloadUrl`` is what a model takes. Uploads create no task and cost nothing, so they are
retried like status reads; KIE refusing the key stops everything as it does for any call.

Each distinct content (by SHA-256) is uploaded once: jobs needing the same file at the same time
share one upload, and a later job reuses the URL from the cache (:mod:`kierouter._upload_cache`)
until it is ``reuse_for`` old (2 days by default: KIE keeps uploads 3 days, and a job started
near the end must still find its input when the model reads it, possibly after escalations).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import msgspec

from ._errors import (
    AuthError,
    ConfigurationError,
    InsufficientCreditsError,
    KieRouterError,
    MalformedResponseError,
    TransportError,
    UploadError,
    ValidationError,
)
from ._inputs import ImageInput, LocalImage, check_input, has_local_inputs, normalize_input
from ._upload_cache import UPLOAD_RETENTION, MemoryUploadCache, UploadCache, UploadedFile

if TYPE_CHECKING:
    from ._models import ImageRequest
    from ._transport import KieClient

__all__ = [
    "DEFAULT_UPLOAD_URL",
    "STREAM_THRESHOLD",
    "UPLOAD_REUSE",
    "Uploader",
]

log = logging.getLogger("kierouter.uploads")

DEFAULT_UPLOAD_URL = "https://kieai.redpandaai.co"
"""KIE's upload host (KIE-API.md §3.8)."""
UPLOAD_REUSE = UPLOAD_RETENTION - 24 * 3600.0
"""How long a cached upload is reused: KIE's 3-day retention less a day's margin."""
STREAM_THRESHOLD = 1024 * 1024
"""Files larger than this (bytes) are streamed as multipart; smaller ones sent as base64 JSON."""

_BASE64_PATH = "/api/file-base64-upload"
_STREAM_PATH = "/api/file-stream-upload"
_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
_T = TypeVar("_T")


def _retrieve(future: asyncio.Future[Any]) -> None:
    # a shared flight whose waiters were all cancelled: its error is nobody's to report
    if not future.cancelled():
        future.exception()


async def _single_flight(
    table: dict[Hashable, asyncio.Future[Any]], key: Hashable, start: Callable[[], Awaitable[_T]]
) -> tuple[_T, bool]:
    """Run ``start()`` once for every caller asking for ``key`` at the same time.

    Returns the result and whether this caller joined a flight another one started. The flight
    is shielded: one caller being cancelled does not cancel it for the others.
    """
    flight = table.get(key)
    joined = flight is not None
    if flight is None:
        flight = asyncio.ensure_future(start())
        table[key] = flight
        flight.add_done_callback(lambda _f: table.pop(key, None))
        flight.add_done_callback(_retrieve)
    return await asyncio.shield(flight), joined


def _sha256_of(image: LocalImage) -> str:
    if image.source is None:
        return hashlib.sha256(image.read()).hexdigest()
    with open(image.source, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _open(image: LocalImage) -> BinaryIO:
    if image.source is None:
        return io.BytesIO(image.read())
    return open(image.source, "rb")


class Uploader:
    """Uploads local input images to KIE and remembers them. A router has one: ``router.uploads``.

    Args:
        client: the :class:`~kierouter.KieClient` whose key, connection pool and retry settings
            uploads use.
        base_url: the upload host. Default: ``$KIE_UPLOAD_URL``; else the client's base URL
            when it is not api.kie.ai (an emulator, which serves uploads itself); else
            ``https://kieai.redpandaai.co``.
        cache: where uploads are remembered (default: in memory, for this uploader's life).
        reuse_for: seconds a remembered upload is reused before the file is uploaded again.
        stream_threshold: files larger than this many bytes are streamed (multipart).
        upload_path: the ``uploadPath`` folder on KIE's side.
    """

    def __init__(
        self,
        client: KieClient,
        *,
        base_url: str | None = None,
        cache: UploadCache | None = None,
        reuse_for: float = UPLOAD_REUSE,
        stream_threshold: int = STREAM_THRESHOLD,
        upload_path: str = "kierouter",
    ) -> None:
        self.client = client
        self._base_url = base_url.rstrip("/") if base_url else None
        self.cache: UploadCache = cache if cache is not None else MemoryUploadCache()
        self.reuse_for = reuse_for
        self.stream_threshold = stream_threshold
        self.upload_path = upload_path
        #: Counters a test or a report can read: ``uploaded`` (sent), ``reused`` (from the
        #: cache or another job's upload in flight).
        self.counts = {"uploaded": 0, "reused": 0}
        self._uploads: dict[Hashable, asyncio.Future[Any]] = {}
        self._digests: dict[Hashable, asyncio.Future[Any]] = {}
        self._known: dict[tuple[str, int, int, int] | None, str] = {}

    def __repr__(self) -> str:
        return f"<Uploader {self.base_url} cache={type(self.cache).__name__}>"

    @property
    def base_url(self) -> str:
        """The upload host in use (see the class docstring for how it is chosen)."""
        if self._base_url:
            return self._base_url
        env = os.environ.get("KIE_UPLOAD_URL")
        if env:
            return env.rstrip("/")
        from ._transport import DEFAULT_BASE_URL

        api = self.client.base_url
        return api if api != DEFAULT_BASE_URL else DEFAULT_UPLOAD_URL

    def close(self) -> None:
        """Close the cache's file, if it has one (it reopens when used again)."""
        close = getattr(self.cache, "close", None)
        if callable(close):
            close()

    # -- the entry points ------------------------------------------------------------------------

    async def resolve(self, request: ImageRequest) -> ImageRequest:
        """``request`` with every local file and bytes input replaced by its KIE URL.

        Files are checked again (they may have changed since planning), uploaded at most once
        per content, concurrently. Raises :class:`~kierouter.ValidationError` for a bad file and
        :class:`~kierouter.UploadError` (naming the field and file) when an upload fails after
        its retries. A request with URLs only is returned as it is.
        """
        if not has_local_inputs(request):
            return request
        fields = [(f"images[{n}]", value) for n, value in enumerate(request.images)]
        if request.mask is not None:
            fields.append(("mask", request.mask))
        checked = [(value, check_input(value, field)) for field, value in fields]
        urls = await asyncio.gather(*(self._url_for(value, image) for value, image in checked))
        n_images = len(request.images)
        return msgspec.structs.replace(
            request,
            images=tuple(urls[:n_images]),
            mask=urls[n_images] if request.mask is not None else None,
        )

    async def upload(self, source: ImageInput, *, field: str = "file") -> UploadedFile:
        """Upload one local image (a path or bytes), or reuse its remembered upload.

        Raises :class:`~kierouter.ValidationError` when ``source`` is a URL already or not a
        readable PNG, JPEG or WEBP image, :class:`~kierouter.UploadError` when the upload fails.
        """
        value = normalize_input(source, field)
        image = check_input(value, field)
        if image is None:
            raise ValidationError(field, f"{value} is a URL already; models take it as it is")
        return await self._file_for(image)

    # -- internals ---------------------------------------------------------------------------------

    async def _url_for(self, value: str, image: LocalImage | None) -> str:
        return value if image is None else (await self._file_for(image)).url

    async def _digest(self, image: LocalImage) -> str:
        if image.stamp is None:
            return await asyncio.to_thread(_sha256_of, image)
        # a file is hashed once while it stays the same (path, size, mtime, inode): a batch
        # naming one photo in 10 000 rows reads it once, not 10 000 times
        key = image.stamp
        known = self._known.get(key)
        if known is None:
            found, _ = await _single_flight(
                self._digests, key, lambda: asyncio.to_thread(_sha256_of, image)
            )
            known = str(found)
            if len(self._known) > 4096:
                self._known.clear()
            self._known[key] = known
        return known

    async def _file_for(self, image: LocalImage) -> UploadedFile:
        try:
            digest = await self._digest(image)
        except OSError as exc:
            raise ValidationError(
                image.field, f"{image.label} cannot be read ({exc.strerror or exc})"
            ) from None
        host = self.base_url
        cached = self._remembered(host, digest)
        if cached is not None and time.time() - cached.uploaded_at < self.reuse_for:
            self.counts["reused"] += 1
            log.info("%s: reusing the upload of %s: %s", image.field, image.label, cached.url)
            return msgspec.structs.replace(cached, reused=True)
        try:
            file, joined = await _single_flight(
                self._uploads, (host, digest), lambda: self._send(image, digest, host)
            )
        except (AuthError, InsufficientCreditsError, ConfigurationError):
            raise  # the key or the account, not the file: stops like any other call
        except KieRouterError as exc:
            raise UploadError(image.field, image.label, exc) from None
        if joined:
            self.counts["reused"] += 1
            return msgspec.structs.replace(file, reused=True)
        return file

    async def _send(self, image: LocalImage, digest: str, host: str) -> UploadedFile:
        """Upload with retries (as a status read is retried); remember the answer."""
        import stamina

        name = digest[:16] + _EXTENSIONS[image.format]
        stream = image.size > self.stream_threshold
        async for attempt in stamina.retry_context(
            on=self._retryable, attempts=self.client.read_attempts, timeout=None,
            wait_initial=0.25, wait_max=8.0, wait_jitter=0.5,
        ):  # fmt: skip
            with attempt:
                if stream:
                    url = await self._post_stream(host, image, name)
                else:
                    url = await self._post_base64(host, image, name)
        file = UploadedFile(
            url=url, sha256=digest, size=image.size, mime=image.mime, uploaded_at=time.time()
        )
        try:
            self.cache.put(host, file)
        except Exception as exc:  # a cache that cannot write costs a later upload, not this job
            log.warning("upload cache %r could not remember %s: %s", self.cache, file.url, exc)
        self.counts["uploaded"] += 1
        log.info("%s: uploaded %s (%d bytes): %s", image.field, image.label, image.size, file.url)
        return file

    def _remembered(self, host: str, digest: str) -> UploadedFile | None:
        try:
            return self.cache.get(host, digest)
        except Exception as exc:  # an unreadable cache means uploading again, not failing
            log.warning("upload cache %r could not be read: %s", self.cache, exc)
            return None

    def _retryable(self, exc: Exception) -> bool | float:
        # an upload is idempotent: a garbled answer is retried too (a new upload is harmless)
        if isinstance(exc, MalformedResponseError):
            return True
        return self.client._backoff(exc)

    async def _post_base64(self, host: str, image: LocalImage, name: str) -> str:
        import base64

        data = await asyncio.to_thread(image.read)
        body = {
            "base64Data": base64.b64encode(data).decode("ascii"),
            "uploadPath": self.upload_path,
            "fileName": name,
            "mimeType": image.mime,
        }
        return await self._post(host + _BASE64_PATH, json=body)

    async def _post_stream(self, host: str, image: LocalImage, name: str) -> str:
        stream = await asyncio.to_thread(_open, image)
        with stream:
            return await self._post(
                host + _STREAM_PATH,
                files={"file": (name, stream, image.mime)},
                data={"uploadPath": self.upload_path, "fileName": name},
            )

    async def _post(self, url: str, **content: Any) -> str:
        """One POST to the upload API; the answer's ``data.downloadUrl``."""
        import httpx

        from ._transport import unwrap

        headers = self.client._auth()
        try:
            response = await self.client.http.post(url, headers=headers, **content)
        except httpx.HTTPError as exc:
            raise TransportError(f"upload to {url} failed: {type(exc).__name__}: {exc}") from None
        data = unwrap(response.status_code, response.content, response.headers)
        link = data.get("downloadUrl") if isinstance(data, dict) else None
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise MalformedResponseError(f"upload answer has no downloadUrl: {str(data)[:120]}")
        return link
