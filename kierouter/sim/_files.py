"""Result files, download links and uploads.

* Result images are drawn on first request and served at ``{base}/files/{taskId}/{n}.png``.
  Those links expire ``result_ttl`` emulated seconds after the task finished (default 24 h);
  an expired link answers HTTP 403, as KIE's file host did in the field report.
* ``POST /api/v1/common/download-url`` mints a link valid 20 emulated minutes for an emulator
  result URL; any other URL gets ``{"code":422,"msg":"url is wrong"}`` (HTTP 200), as recorded.
* Uploads (stream, base64, URL) are kept 3 emulated days under ``{base}/uploads/...`` and
  answered field by field as recorded (``success``, ``fileName``, ``filePath``
  ``kieai/{account}/{uploadPath}/{fileName}``, ``downloadUrl``, ``fileSize``, ``mimeType``,
  ``uploadedAt``). ``file-url-upload`` copies an emulator URL; it never fetches another host's:
  such a URL is stored as a stand-in PNG drawn from the URL.
* A reference image on this emulator that is unknown or expired cannot be downloaded by KIE: the
  task that names it fails (``broken_reference``). References on other hosts are not fetched;
  their results are drawn as for a text-to-image task.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hashlib
import mimetypes
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import Request, Response, envelope
from ._images import (
    derived_png,
    generate_png,
    ratio_size,
    reference_image,
    remove_background_png,
    upscale_png,
)
from ._state import LINK_TTL, UPLOAD_TTL, SimState, Upload
from ._tasks import ImageJob
from ._validation import Rejection

__all__ = [
    "broken_reference",
    "download_url",
    "file_bytes",
    "mint_link",
    "resolve_result",
    "serve_file",
    "upload_base64",
    "upload_stream",
    "upload_url",
]

_RESULT_PATH = re.compile(r"^/files/([0-9a-f]{32})/(\d+)\.png$")
_ACCOUNT = "100000"


def resolve_result(state: SimState, url: str) -> tuple[str, int] | None:
    """``(task_id, n)`` when ``url`` is one of this emulator's result files."""
    if not state.base_url or not url.startswith(state.base_url + "/"):
        return None
    match = _RESULT_PATH.match(urlsplit(url).path)
    if not match:
        return None
    task = state.tasks.get(match.group(1))
    n = int(match.group(2))
    if task is None or task.state != "success" or n >= len(task.images):
        return None
    return task.id, n


def file_bytes(state: SimState, url: str) -> bytes | None:
    """The bytes behind one of this emulator's URLs (results or uploads), ignoring expiry."""
    found = resolve_result(state, url)
    if found is not None:
        return _render(state, *found)
    if state.base_url and url.startswith(state.base_url + "/uploads/"):
        upload = state.uploads.get(urlsplit(url).path.removeprefix("/uploads/"))
        return upload.data if upload else None
    return None


def _render(state: SimState, task_id: str, n: int) -> bytes:
    cache_key = f"{task_id}/{n}"
    cached = state.images.get(cache_key)
    if cached is not None:
        return cached
    job: ImageJob = state.tasks[task_id].images[n]
    if job.kind == "generate":
        reference = reference_image(file_bytes(state, job.source)) if job.source else None
        if reference is None:
            data = generate_png(job.width, job.height, job.key)
        else:
            data = derived_png(job.width, job.height, job.key, reference)
    else:
        source = file_bytes(state, job.source) if job.source else None
        draw = upscale_png if job.kind == "upscale" else remove_background_png
        data = draw(source, job.key)
    state.images[cache_key] = data
    return data


def mint_link(state: SimState, task_id: str, n: int, ttl: float = LINK_TTL) -> str:
    """A link to result ``n`` of ``task_id`` valid ``ttl`` emulated seconds from now."""
    token = secrets.token_hex(12)
    expires = state.clock.now() + ttl
    state.tokens[token] = (f"{task_id}/{n}", expires)
    expires_unix = state.clock.epoch_ms(expires) // 1000
    return f"{state.base_url}/files/{task_id}/{n}.png?token={token}&expires={expires_unix}"


def _refusal(state: SimState, path: str, query: dict[str, str]) -> Response | None:
    """Why a GET of ``path`` gets no file (404 unknown, 403 expired), or ``None`` if it does."""
    now = state.clock.now()
    if path.startswith("/uploads/"):
        upload = state.uploads.get(path.removeprefix("/uploads/"))
        if upload is None:
            return _plain(404, "Not Found")
        return _plain(403, "Forbidden: this link has expired") if now > upload.expires else None
    match = _RESULT_PATH.match(path)
    task = state.tasks.get(match.group(1)) if match else None
    if match is None or task is None or task.state != "success":
        return _plain(404, "Not Found")
    n = int(match.group(2))
    if n >= len(task.images):
        return _plain(404, "Not Found")
    token = query.get("token")
    if token is not None:
        entry = state.tokens.get(token)
        if entry is None or entry[0] != f"{task.id}/{n}" or now > entry[1]:
            return _plain(403, "Forbidden: this link has expired")
    elif task.completed is None or now > task.completed + state.result_ttl:
        return _plain(403, "Forbidden: this link has expired")
    return None


def serve_file(state: SimState, request: Request) -> Response:
    """GET of a result file or an upload: 404 unknown, 403 expired, else the bytes."""
    state.settle()
    refused = _refusal(state, request.path, request.query)
    if refused is not None:
        return refused
    state.counters["downloads"] += 1
    if request.path.startswith("/uploads/"):
        upload = state.uploads[request.path.removeprefix("/uploads/")]
        return Response(200, upload.data, upload.mime)
    match = _RESULT_PATH.match(request.path)
    assert match is not None
    return Response(200, _render(state, match.group(1), int(match.group(2))), "image/png")


def broken_reference(state: SimState, jobs: Iterable[ImageJob]) -> str | None:
    """The first reference URL on this emulator that KIE could not download (unknown or
    expired), or ``None``. References on other hosts are never fetched, so never broken."""
    state.settle()
    for url in dict.fromkeys(job.source for job in jobs if job.source):
        if state.base_url and url.startswith(state.base_url + "/"):
            parts = urlsplit(url)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if _refusal(state, parts.path, query) is not None:
                return url
    return None


def _plain(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


async def download_url(state: SimState, request: Request) -> Response:
    """``POST /api/v1/common/download-url``: a 20-minute link, or 422 "url is wrong"."""
    body = request.json()
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url:
        raise Rejection(422, "url is required")
    state.settle()
    found = resolve_result(state, url)
    if found is None:
        raise Rejection(422, "url is wrong")
    return envelope(200, "success", mint_link(state, *found))


# -- uploads ----------------------------------------------------------------------------------


def _store(
    state: SimState, how: str, data: bytes, upload_path: Any, name: Any, mime: Any
) -> Response:
    """Keep an upload and answer as KIE does; ``how`` is ``stream``, ``base64`` or ``url``."""
    if not isinstance(upload_path, str) or not upload_path.strip("/"):
        raise Rejection(400, "uploadPath is required")
    folder = upload_path.strip("/")
    if ".." in folder.split("/"):
        raise Rejection(400, "uploadPath must not contain '..'")
    if not isinstance(name, str) or not name:
        ext = (mimetypes.guess_extension(mime) if isinstance(mime, str) else None) or ".bin"
        stamp = state.clock.epoch_ms()
        name = f"{stamp}-{hashlib.sha1(data).hexdigest()[:11]}{ext}"
    if "/" in name or name in (".", ".."):
        raise Rejection(400, "fileName must be a plain file name")
    if not isinstance(mime, str) or not mime:
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    file_path = f"kieai/{_ACCOUNT}/{folder}/{name}"
    state.uploads[file_path] = Upload(data, mime, state.clock.now() + UPLOAD_TTL)
    state.counters["uploads"] += 1
    state.counters["upload_bytes"] += len(data)
    by_how = state.counters["uploads_by_endpoint"]
    by_how[how] = by_how.get(how, 0) + 1
    uploaded = datetime.fromtimestamp(state.clock.epoch_ms() / 1000, UTC)
    data_out = {
        "success": True,
        "fileName": name,
        "filePath": file_path,
        "downloadUrl": f"{state.base_url}/uploads/{file_path}",
        "fileSize": len(data),
        "mimeType": mime,
        "uploadedAt": uploaded.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return envelope(200, "File uploaded successfully", data_out, success=True)


async def upload_base64(state: SimState, request: Request) -> Response:
    """``POST /api/file-base64-upload``: a raw base64 string or a data URI."""
    body = request.json()
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    raw = body.get("base64Data")
    if not isinstance(raw, str) or not raw:
        raise Rejection(400, "base64Data is required")
    mime = body.get("mimeType")
    if raw.startswith("data:"):
        header, _, raw = raw.partition(",")
        mime = mime or header[5:].split(";")[0] or None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise Rejection(400, "base64Data is not valid base64") from None
    return _store(state, "base64", data, body.get("uploadPath"), body.get("fileName"), mime)


async def upload_stream(state: SimState, request: Request) -> Response:
    """``POST /api/file-stream-upload``: multipart with ``file``, ``uploadPath``, ``fileName``."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise Rejection(400, "expected a multipart/form-data body")
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body
    )
    fields: dict[str, str] = {}
    file_data: bytes | None = None
    file_mime: str | None = None
    file_name: str | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name == "file":
            file_data = payload
            file_mime = part.get_content_type() if part.get("content-type") else None
            file_name = part.get_filename()
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if file_data is None:
        raise Rejection(400, "file is required")
    name = fields.get("fileName") or None
    mime = file_mime if file_mime and file_mime != "application/octet-stream" else None
    if mime is None and file_name:
        mime = mimetypes.guess_type(file_name)[0]
    return _store(state, "stream", file_data, fields.get("uploadPath"), name, mime)


async def upload_url(state: SimState, request: Request) -> Response:
    """``POST /api/file-url-upload``: copies an emulator URL; any other URL becomes a stand-in PNG.

    The emulator never reaches the internet, so a foreign URL is not fetched: it is replaced
    by a deterministic picture drawn from the URL.
    """
    body = request.json()
    if not isinstance(body, dict):
        raise Rejection(400, "request body must be a JSON object")
    url = body.get("fileUrl")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise Rejection(400, "fileUrl is required (an http(s) URL)")
    data = file_bytes(state, url)
    mime = "image/png"
    if data is None:
        data = generate_png(*ratio_size("1:1", "1K"), url.encode())
    name = body.get("fileName") or urlsplit(url).path.rsplit("/", 1)[-1] or None
    return _store(state, "url", data, body.get("uploadPath"), name, mime)
