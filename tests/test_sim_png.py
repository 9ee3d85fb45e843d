"""kierouter._images: the stdlib PNG codec and header sniffing never fail with anything but a
clear ValueError."""

from __future__ import annotations

import base64
import contextlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kierouter._images import (
    ImageFormatError,
    UnsupportedImageError,
    decode_png,
    encode_png,
    sniff,
)

# the 1x1 PNG from the recorded upload (tests/fixtures/kie-recordings/file-uploads__base64.json)
RECORDED_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFCcSAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(
    width: int, height: int, color: int, rows: bytes, depth: int = 8, interlace: int = 0
) -> bytes:
    """A PNG from already-filtered rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def paeth(a: int, b: int, c: int) -> int:
    """The PNG Paeth predictor."""
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered(pixels: bytes, width: int, height: int, bpp: int, kinds: list[int]) -> bytes:
    """Apply PNG filter ``kinds[row]`` to each row (the encoder side, written independently)."""
    stride = width * bpp
    out = bytearray()
    prev = bytes(stride)
    for y in range(height):
        row = pixels[y * stride : (y + 1) * stride]
        kind = kinds[y % len(kinds)]
        line = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            line.append((x - pred) & 0xFF)
        out += bytes([kind]) + line
        prev = row
    return bytes(out)


def test_recorded_png_decodes_when_crc_checks_are_off() -> None:
    """The recorded 1x1 PNG has a bad IHDR CRC: refused by default, decoded with check_crc=False."""
    with pytest.raises(ImageFormatError, match="CRC"):
        decode_png(RECORDED_PNG)
    image = decode_png(RECORDED_PNG, check_crc=False)
    assert (image.width, image.height, image.channels, len(image.pixels)) == (1, 1, 4, 4)
    assert sniff(RECORDED_PNG) == ("png", 1, 1)


@pytest.mark.parametrize("alpha", [False, True])
def test_encode_decode_round_trip(alpha: bool) -> None:
    """encode_png output decodes back to the same pixels, RGB and RGBA."""
    channels = 4 if alpha else 3
    pixels = bytes((i * 7) % 256 for i in range(5 * 3 * channels))
    image = decode_png(encode_png(5, 3, pixels, alpha=alpha))
    assert (image.width, image.height, image.channels, image.pixels) == (5, 3, channels, pixels)


@pytest.mark.parametrize(("color", "bpp"), [(0, 1), (2, 3), (4, 2), (6, 4)])
def test_all_filters_and_colour_types_decode(color: int, bpp: int) -> None:
    """Filters 0-4 on gray, RGB, gray+alpha and RGBA rows reproduce the original pixels."""
    width, height = 7, 10
    pixels = bytes(
        (x * 31 + y * 17 + x * y) % 256 for y in range(height) for x in range(width * bpp)
    )
    data = png(width, height, color, filtered(pixels, width, height, bpp, [0, 1, 2, 3, 4]))
    image = decode_png(data)
    assert (image.channels, image.pixels) == (bpp, pixels)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (png(2, 2, 2, b"\x00" * 14, interlace=1), "interlaced"),
        (png(2, 2, 2, b"\x00" * 26, depth=16), "bit depth 16"),
        (png(2, 2, 3, b"\x00" * 6), "palette"),
    ],
)
def test_unsupported_pngs_are_refused_clearly(data: bytes, message: str) -> None:
    """Interlaced, 16-bit and palette PNGs raise UnsupportedImageError saying why."""
    with pytest.raises(UnsupportedImageError, match=message):
        decode_png(data)


def test_garbage_raises_image_format_error() -> None:
    """Non-images, bad CRCs, truncated files and bad filters raise ImageFormatError."""
    good = encode_png(4, 4, bytes(48))
    bad_crc = good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]
    bad_filter = png(1, 1, 2, b"\x09\x00\x00\x00")
    for data in (b"", b"hello", good[:20], good[:-12], bad_crc, bad_filter, b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(ImageFormatError):
            decode_png(data)
    with pytest.raises(ImageFormatError):
        sniff(b"GIF89a....")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300))
def test_fuzzed_input_only_raises_value_errors(noise: bytes, cut: int) -> None:
    """Random bytes and mangled valid files give results or ValueError, never another error."""
    base = encode_png(3, 2, bytes(range(18)))
    candidates = [noise, base[:cut] + noise, base[: max(8, cut)], b"\xff\xd8" + noise,
                  b"RIFF\x00\x00\x00\x00WEBP" + noise]  # fmt: skip
    for data in candidates:
        for fn in (decode_png, sniff):
            with contextlib.suppress(ValueError):
                fn(data)


def test_sniff_jpeg_reads_the_frame_header() -> None:
    """A JPEG's size comes from its SOF segment, after skipping APP segments."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 480, 640, 1) + bytes(3)
    assert sniff(b"\xff\xd8" + app0 + sof + b"\xff\xda") == ("jpeg", 640, 480)
    with pytest.raises(ImageFormatError, match="SOF"):
        sniff(b"\xff\xd8" + app0)


def riff(kind: bytes, payload: bytes) -> bytes:
    """A WebP RIFF container with one chunk."""
    body = b"WEBP" + kind + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_sniff_webp_variants() -> None:
    """VP8 (lossy), VP8L (lossless) and VP8X (extended) headers give the right size."""
    vp8 = riff(b"VP8 ", b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", 300, 200) + bytes(4))
    bits = (300 - 1) | ((200 - 1) << 14)
    vp8l = riff(b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + bytes(4))
    vp8x = riff(b"VP8X", bytes(4) + (299).to_bytes(3, "little") + (199).to_bytes(3, "little"))
    for data in (vp8, vp8l, vp8x):
        assert sniff(data) == ("webp", 300, 200)


def test_encode_rejects_wrong_sizes() -> None:
    """encode_png says what it expected when the pixel buffer does not fit."""
    with pytest.raises(ValueError, match="expected 12 bytes"):
        encode_png(2, 2, bytes(11))
