"""Reference-image inputs: URLs, local files and bytes, checked before anything is paid.

``ImageRequest.images`` and ``ImageRequest.mask`` hold strings, so a request stays a plain
msgspec Struct that encodes to JSON (journals store it as it is). Each string is one of:

* ``https://...`` / ``http://...``: a URL KIE fetches itself; sent unchanged.
* ``data:<mime>;base64,...``: bytes held in memory (``bytes`` given to an ImageRequest become
  this, so they survive JSON too; prefer paths for big batches: the journal keeps every byte).
* anything else: a local file path (``os.PathLike`` values become ``str`` with
  :func:`os.fspath`; a relative path is relative to the current directory when the job runs).

Local files and data URIs are checked here (exists, readable, a PNG, JPEG or WEBP by its bytes,
within each model's ``Capabilities.max_image_bytes``) with no network call, and uploaded after
planning by :mod:`kierouter._uploads`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable
from stat import S_ISDIR
from typing import Literal, Protocol

import msgspec

from ._errors import ValidationError

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "IMAGE_TYPES",
    "ImageInput",
    "LocalImage",
    "check_input",
    "check_inputs",
    "data_size",
    "has_local_inputs",
    "input_kind",
    "normalize_input",
]


class _HasImages(Protocol):
    """What this module reads of :class:`~kierouter.ImageRequest` (typed structurally, as
    ``_models`` imports this module to normalise those fields)."""

    @property
    def images(self) -> tuple[str, ...]: ...
    @property
    def mask(self) -> str | None: ...


ImageInput = str | os.PathLike[str] | bytes
"""What ``ImageRequest.images`` (each item) and ``ImageRequest.mask`` accept: an http(s) URL,
a local file path (``str`` or ``os.PathLike``), or the image's bytes."""

DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""A card's input image limit when it names none: 10 MB, KIE's documented limit for most edit
models (Seedream, Nano Banana edit, Recraft upscale)."""

IMAGE_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
"""The image formats KIE's models take (told by the file's bytes, not its name) and their MIME
types. The models' docs list PNG, JPEG (jpg, jfif, pjpeg) and WEBP."""

# Enough for a PNG or WEBP header and the frame header of most JPEGs; a JPEG whose frame header
# comes later (big EXIF or ICC segments) is taken as a JPEG by its start marker.
_HEADER_BYTES = 16 * 1024
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*);base64,", re.I)
_ACCEPTED = "an http(s) URL, a path to a PNG, JPEG or WEBP file, or the image's bytes"

Kind = Literal["url", "data", "file"]


def normalize_input(value: object, field: str) -> str:
    """One ``images``/``mask`` item as the string an ImageRequest stores (see the module doc)."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fsdecode(os.fspath(value))
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            mime = IMAGE_TYPES[_sniff(data, len(data))]
        except ValueError:
            mime = "application/octet-stream"  # refused, naming the field, by check_inputs
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    raise ValidationError(field, f"{type(value).__name__} is not {_ACCEPTED}")


def input_kind(value: str) -> Kind:
    """``"url"``, ``"data"`` (bytes as a data URI) or ``"file"`` (a local path)."""
    if value.startswith(("https://", "http://")):
        return "url"
    if value[:5].lower() == "data:":
        return "data"
    return "file"


def has_local_inputs(request: _HasImages) -> bool:
    """Whether any image or the mask is a local file or bytes (something to upload)."""
    mask = request.mask
    if mask is not None and not mask.startswith(("https://", "http://")):
        return True
    return any(not image.startswith(("https://", "http://")) for image in request.images)


def syntax_problem(value: str) -> str | None:
    """What is wrong with one input string on its face (no file access), or ``None``."""
    if not value.strip():
        return f"is empty; give {_ACCEPTED}"
    kind = input_kind(value)
    if kind == "data":
        if not _DATA_URI.match(value):
            return "is a data URI but not 'data:<type>;base64,<data>'"
        return None
    if kind == "file":
        if _SCHEME.match(value):
            scheme = value.split(":", 1)[0]
            return f"{scheme}: URLs are not supported; give {_ACCEPTED}"
        if "\x00" in value:
            return "contains a NUL character"
    return None


class LocalImage(msgspec.Struct, frozen=True, kw_only=True):
    """A local input that passed the checks: where it is, how big, and its type.

    ``source`` is the path for a file, ``None`` for bytes (a data URI); ``label`` names it in
    messages (the path, or ``"<N bytes>"``); ``stamp`` identifies a file's current version
    (absolute path, size, mtime, inode).
    """

    field: str
    value: str
    source: str | None
    label: str
    size: int
    format: str
    stamp: tuple[str, int, int, int] | None = None

    @property
    def mime(self) -> str:
        """The MIME type of its format (``image/png``, ``image/jpeg``, ``image/webp``)."""
        return IMAGE_TYPES[self.format]

    def read(self) -> bytes:
        """All its bytes (read from disk for a file)."""
        if self.source is None:
            return base64.b64decode(self.value.partition(",")[2])
        with open(self.source, "rb") as file:
            return file.read()


def _sniff(header: bytes, size: int) -> str:
    """The format of an image from its first bytes; ``ValueError`` saying what it looks like."""
    from ._images import ImageFormatError, sniff

    try:
        return sniff(header).format
    except ImageFormatError as exc:
        if header.startswith(b"\xff\xd8\xff") and size > len(header):
            return "jpeg"  # a JPEG whose frame header comes after large metadata segments
        known = header.startswith((b"\x89PNG", b"\xff\xd8")) or header[8:12] == b"WEBP"
        raise ValueError(f"a broken image ({exc})" if known else _looks_like(header)) from None


def _looks_like(header: bytes) -> str:
    """What a file that is not a PNG, JPEG or WEBP seems to be, for the error message."""
    head = header[:512]
    if not head:
        return "an empty file"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "SVG/XML"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF (convert it to JPEG)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "of an unknown type"
    return "text"


# A file is checked once per (path, size, mtime, inode): a batch of 10 000 rows naming the same
# photo stats it 10 000 times but reads its header once.
_CHECKED: dict[tuple[str, int, int, int], str] = {}


def _check_file(field: str, path: str) -> LocalImage:
    def bad(message: str) -> ValidationError:
        return ValidationError(field, f"{path}: {message}; give {_ACCEPTED}")

    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise bad("no such file") from None
    except OSError as exc:
        raise bad(f"cannot be read ({exc.strerror or exc})") from None
    if S_ISDIR(stat.st_mode):
        raise bad("is a folder, not a file")
    signature = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    fmt = _CHECKED.get(signature)
    if fmt is None:
        try:
            with open(path, "rb") as file:
                header = file.read(_HEADER_BYTES)
        except OSError as exc:
            raise bad(f"cannot be read ({exc.strerror or exc})") from None
        try:
            fmt = _sniff(header, stat.st_size)
        except ValueError as exc:
            raise ValidationError(
                field, f"{path} is not a PNG, JPEG or WEBP image, the types KIE takes: it is {exc}"
            ) from None
        if len(_CHECKED) > 4096:
            _CHECKED.clear()
        _CHECKED[signature] = fmt
    return LocalImage(
        field=field,
        value=path,
        source=path,
        label=path,
        size=stat.st_size,
        format=fmt,
        stamp=signature,
    )


def data_size(value: str) -> int:
    """How many bytes a ``data:...;base64,`` URI holds (without decoding it)."""
    encoded = value.partition(",")[2]
    return len(encoded) * 3 // 4 - (len(encoded) - len(encoded.rstrip("=")))


def _check_data(field: str, value: str) -> LocalImage:
    encoded = value.partition(",")[2]
    size = data_size(value)
    label = f"<{size} bytes>"
    try:
        header = base64.b64decode(encoded[: _HEADER_BYTES // 3 * 4], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, "the data URI's base64 data is not valid") from None
    try:
        fmt = _sniff(header, size)
    except ValueError as exc:
        raise ValidationError(
            field, f"the bytes given are not a PNG, JPEG or WEBP image, the types KIE takes: {exc}"
        ) from None
    return LocalImage(field=field, value=value, source=None, label=label, size=size, format=fmt)


def _fields(request: _HasImages) -> Iterable[tuple[str, str]]:
    for index, value in enumerate(request.images):
        yield f"images[{index}]", value
    if request.mask is not None:
        yield "mask", request.mask


def check_input(value: str, field: str) -> LocalImage | None:
    """Check one input string: ``None`` for a URL, else the checked local file or bytes.

    Raises :class:`~kierouter.ValidationError` naming ``field`` and the file when it is missing,
    unreadable, a folder, or not a PNG, JPEG or WEBP image by its bytes. No network call.
    """
    problem = syntax_problem(value)
    if problem is not None:
        raise ValidationError(field, problem)
    kind = input_kind(value)
    if kind == "file":
        return _check_file(field, value)
    if kind == "data":
        return _check_data(field, value)
    return None


def check_inputs(request: _HasImages) -> tuple[LocalImage, ...]:
    """Check every local file and bytes input of ``request`` (see :func:`check_input`); return
    them in field order (``images[0]``, ..., ``mask``), URLs left out."""
    found = (check_input(value, field) for field, value in _fields(request))
    return tuple(image for image in found if image is not None)
