"""Just enough image handling for kierouter, with the standard library only.

* :func:`encode_png` writes 8-bit RGB or RGBA PNGs (the emulator's results).
* :func:`decode_png` reads 8-bit, non-interlaced PNGs (gray, gray+alpha, RGB, RGBA; every filter).
* :func:`sniff` reads only the header of a PNG, JPEG or WebP file to find its format and size.

Garbage never escapes as ``IndexError`` or ``struct.error``: every failure is an
:class:`ImageFormatError` (a ``ValueError``) that says what was wrong.
"""

from __future__ import annotations

import struct
import zlib
from typing import Literal, NamedTuple

__all__ = [
    "PNG_SIGNATURE",
    "DecodedImage",
    "ImageFormatError",
    "ImageInfo",
    "UnsupportedImageError",
    "decode_png",
    "encode_png",
    "sniff",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels (palette type 3 unsupported)
_MAX_PIXELS = 64 * 1024 * 1024


class ImageFormatError(ValueError):
    """The bytes are not a valid image of the expected format."""


class UnsupportedImageError(ImageFormatError):
    """A valid image using a feature this module does not decode (interlace, 16-bit, palette)."""


class DecodedImage(NamedTuple):
    """Decoded pixels, row by row, ``channels`` bytes per pixel, no padding."""

    width: int
    height: int
    channels: int
    pixels: bytes


class ImageInfo(NamedTuple):
    """What a file header says: its format and pixel size."""

    format: Literal["png", "jpeg", "webp"]
    width: int
    height: int


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(width: int, height: int, pixels: bytes, *, alpha: bool = False) -> bytes:
    """Encode 8-bit RGB (or RGBA with ``alpha=True``) pixels, row-major, as a PNG file."""
    channels = 4 if alpha else 3
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    stride = width * channels
    if len(pixels) != stride * height:
        raise ValueError(
            f"expected {stride * height} bytes for {width}x{height}x{channels}, got {len(pixels)}"
        )
    raw = bytearray()
    for row in range(height):
        raw.append(0)  # filter type 0: the rows are compressed as they are
        raw += pixels[row * stride : (row + 1) * stride]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + _chunk(b"IEND", b"")
    )


def _png_chunks(data: bytes, check_crc: bool = True) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_SIGNATURE):
        raise ImageFormatError("not a PNG file (bad signature)")
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise ImageFormatError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ImageFormatError(f"truncated PNG chunk {kind!r}")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if check_crc and zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ImageFormatError(f"PNG chunk {kind!r} fails its CRC check")
        chunks.append((kind, body))
        pos = end + 4
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR":
        raise ImageFormatError("PNG does not start with an IHDR chunk")
    return chunks


def _ihdr(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) != 13:
        raise ImageFormatError("PNG IHDR chunk has the wrong length")
    width, height, depth, color, _comp, _filt, interlace = struct.unpack(">IIBBBBB", body)
    if width == 0 or height == 0:
        raise ImageFormatError("PNG has a zero width or height")
    return width, height, depth, color, interlace


def decode_png(data: bytes, *, check_crc: bool = True) -> DecodedImage:
    """Decode an 8-bit, non-interlaced PNG into raw pixels.

    ``check_crc=False`` accepts chunks whose CRC is wrong (hand-made sample files often have
    one; the 1x1 PNG in KIE's recorded upload does), still checking everything else.
    """
    chunks = _png_chunks(bytes(data), check_crc)
    width, height, depth, color, interlace = _ihdr(chunks[0][1])
    if color not in _CHANNELS:
        raise UnsupportedImageError(f"PNG colour type {color} (palette) is not supported")
    if depth != 8:
        raise UnsupportedImageError(f"PNG bit depth {depth} is not supported (8-bit only)")
    if interlace:
        raise UnsupportedImageError("interlaced PNGs are not supported")
    if width * height > _MAX_PIXELS:
        raise UnsupportedImageError(f"PNG of {width}x{height} is too large to decode")
    if not any(kind == b"IEND" for kind, _ in chunks):
        raise ImageFormatError("PNG has no IEND chunk (truncated file)")
    compressed = b"".join(body for kind, body in chunks if kind == b"IDAT")
    try:
        raw = zlib.decompress(compressed)
    except zlib.error as exc:
        raise ImageFormatError(f"PNG image data does not decompress: {exc}") from None
    channels = _CHANNELS[color]
    stride = width * channels
    if len(raw) != (stride + 1) * height:
        raise ImageFormatError(
            f"PNG image data has {len(raw)} bytes, expected {(stride + 1) * height}"
        )
    return DecodedImage(width, height, channels, _unfilter(raw, stride, height, channels))


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> bytes:
    out = bytearray(stride * height)
    prev = bytearray(stride)
    pos = 0
    for row in range(height):
        kind = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += stride + 1
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif kind != 0:
            raise ImageFormatError(f"PNG row {row} has unknown filter type {kind}")
        out[row * stride : (row + 1) * stride] = line
        prev = line
    return bytes(out)


def sniff(data: bytes) -> ImageInfo:
    """Read a PNG, JPEG or WebP header and return its format and size; decodes no pixels."""
    data = bytes(data)
    if data.startswith(PNG_SIGNATURE):
        return _sniff_png(data)
    if data.startswith(b"\xff\xd8"):
        return _sniff_jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _sniff_webp(data)
    raise ImageFormatError("not a PNG, JPEG or WebP file")


def _sniff_png(data: bytes) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageFormatError("PNG is truncated before its IHDR chunk")
    width, height, _depth, _color, _interlace = _ihdr(data[16:29])
    return ImageInfo("png", width, height)


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})


def _sniff_jpeg(data: bytes) -> ImageInfo:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageFormatError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ImageFormatError("JPEG segment has an invalid length")
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if width == 0 or height == 0:
                raise ImageFormatError("JPEG frame has a zero width or height")
            return ImageInfo("jpeg", width, height)
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        pos += 2 + length
    raise ImageFormatError("JPEG has no frame header (SOF) in the data given")


def _sniff_webp(data: bytes) -> ImageInfo:
    kind = data[12:16]
    if kind == b"VP8 " and len(data) >= 30:
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageFormatError("WebP VP8 frame has a bad start code")
        width, height = struct.unpack("<HH", data[26:30])
        return _webp(width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L" and len(data) >= 25:
        if data[20] != 0x2F:
            raise ImageFormatError("WebP VP8L stream has a bad signature")
        bits = int.from_bytes(data[21:25], "little")
        return _webp((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _webp(width, height)
    raise ImageFormatError("WebP header is truncated or of an unknown kind")


def _webp(width: int, height: int) -> ImageInfo:
    if width == 0 or height == 0:
        raise ImageFormatError("WebP has a zero width or height")
    return ImageInfo("webp", width, height)
