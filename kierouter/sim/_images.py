"""The emulator's pictures: small deterministic PNGs with a visible pattern.

The same key (model, prompt, seed, size, index) always gives the same bytes; any change gives a
different picture. Sizes are KIE's scaled down: the long side is 128 px at 1K (or no tier),
192 px at 2K, 224 px at 3K and 256 px at 4K.

Edits show what they were given: an edit's result keeps its pattern but takes the average colour
of its reference image (:func:`derived_png`); upscale and remove-background work on the
reference's pixels. References are read from PNG, or from a JPEG's block colours (``_jpeg``).
"""

from __future__ import annotations

import hashlib
import math

from kierouter._images import DecodedImage, decode_png, encode_png, sniff

__all__ = [
    "LONG_SIDE",
    "RATIO_NAMES",
    "derived_png",
    "generate_png",
    "mean_colour",
    "ratio_size",
    "reference_image",
    "remove_background_png",
    "upscale_png",
]

_REFERENCE_SIDE = 512  # a JPEG reference's block picture is drawn at most this large

LONG_SIDE = {"1K": 128, "2K": 192, "3K": 224, "4K": 256}

#: Market ``image_size`` names -> ratios.
RATIO_NAMES = {
    "square": "1:1",
    "square_hd": "1:1",
    "portrait_4_3": "3:4",
    "portrait_3_2": "2:3",
    "portrait_16_9": "9:16",
    "landscape_4_3": "4:3",
    "landscape_3_2": "3:2",
    "landscape_16_9": "16:9",
    "landscape_21_9": "21:9",
}


def ratio_size(ratio: str | None, tier: str | None) -> tuple[int, int]:
    """Pixel size for an aspect ratio (``"16:9"`` or a Market size name) and a tier."""
    long_side = LONG_SIDE.get(tier or "1K", 128)
    ratio = RATIO_NAMES.get(ratio or "", ratio)
    w, h = 1.0, 1.0
    if ratio and ":" in ratio:
        left, _, right = ratio.partition(":")
        try:
            w, h = float(left), float(right)
        except ValueError:
            w, h = 1.0, 1.0
        if w <= 0 or h <= 0:
            w, h = 1.0, 1.0
    if w >= h:
        return long_side, max(8, round(long_side * h / w))
    return max(8, round(long_side * w / h)), long_side


def _palette(digest: bytes) -> list[tuple[int, int, int]]:
    return [(digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 15, 3)]


def _render(width: int, height: int, key: bytes) -> bytearray:
    digest = hashlib.sha256(key).digest()
    (r0, g0, b0), (r1, g1, b1), disc, (rs, gs, bs), _ = _palette(digest)
    cx = width * (0.25 + digest[16] / 510)
    cy = height * (0.25 + digest[17] / 510)
    radius = min(width, height) * (0.18 + digest[18] / 1275)
    period = 6 + digest[19] % 14
    slope = 1 if digest[20] % 2 else -1
    # stripes are periodic in x + slope*y with period 3*period: one long 0/1 mask serves all rows
    cycle = 3 * period
    stripes = bytes(1 if (k // period) % 3 == 0 else 0 for k in range(width + cycle))
    disc_px = bytes(disc)
    pixels = bytearray(width * height * 3)
    stride = width * 3
    for y in range(height):
        t = y / max(1, height - 1)
        base = (int(r0 + (r1 - r0) * t), int(g0 + (g1 - g0) * t), int(b0 + (b1 - b0) * t))
        stripe = ((base[0] + rs) >> 1, (base[1] + gs) >> 1, (base[2] + bs) >> 1)
        offset = (slope * y) % cycle
        mask = stripes[offset : offset + width]
        row = bytearray(stride)
        for c in range(3):  # each channel at C speed: translate the mask into colour values
            table = bytearray(256)
            table[0], table[1] = base[c], stripe[c]
            row[c::3] = mask.translate(table)
        dy = y - cy
        if abs(dy) <= radius:
            half = (radius * radius - dy * dy) ** 0.5
            x0 = max(0, math.ceil(cx - half))
            x1 = min(width - 1, math.floor(cx + half))
            if x1 >= x0:
                row[x0 * 3 : (x1 + 1) * 3] = disc_px * (x1 - x0 + 1)
        pixels[y * stride : (y + 1) * stride] = row
    return pixels


def generate_png(width: int, height: int, key: bytes) -> bytes:
    """A deterministic RGB PNG for ``key``: a gradient, diagonal stripes and a disc."""
    return encode_png(width, height, bytes(_render(width, height, key)), alpha=False)


def reference_image(data: bytes | None) -> DecodedImage | None:
    """The pixels of a reference image (PNG, or a JPEG's block colours scaled up to its size,
    at most 512 px on its long side); ``None`` when the emulator cannot read it."""
    if not data:
        return None
    try:
        return decode_png(data, check_crc=False)
    except ValueError:
        pass
    from ._jpeg import jpeg_preview

    blocks = jpeg_preview(data)
    if blocks is None:
        return None
    info = sniff(data)
    scale = min(1.0, _REFERENCE_SIDE / max(info.width, info.height))
    width, height = max(1, round(info.width * scale)), max(1, round(info.height * scale))
    rows = []
    for y in range(height):
        source_y = min(blocks.height - 1, y * blocks.height // height)
        row = bytearray()
        for x in range(width):
            at = (source_y * blocks.width + x * blocks.width // width) * 3
            row += blocks.pixels[at : at + 3]
        rows.append(bytes(row))
    return DecodedImage(width, height, 3, b"".join(rows))


def mean_colour(image: DecodedImage) -> tuple[int, int, int]:
    """The average RGB colour of ``image`` (grey images give a grey)."""
    count = image.width * image.height
    step = image.channels
    if step >= 3:
        r, g, b = (round(sum(image.pixels[c::step]) / count) for c in range(3))
    else:
        r = g = b = round(sum(image.pixels[0::step]) / count)
    return r, g, b


def derived_png(width: int, height: int, key: bytes, reference: DecodedImage) -> bytes:
    """``key``'s picture re-centred on ``reference``'s average colour: the pattern stays
    visible, the mean colour is the reference's (within rounding)."""
    pixels = _render(width, height, key)
    count = width * height
    target = mean_colour(reference)
    for c in range(3):
        channel = pixels[c::3]
        mean = sum(channel) / count
        low, high = min(channel), max(channel)
        # the largest share of the pattern that fits between 0 and 255 around the target
        room = min(target[c] / max(1.0, mean - low), (255 - target[c]) / max(1.0, high - mean))
        gain = min(0.35, room)
        table = bytes(max(0, min(255, round(target[c] + gain * (v - mean)))) for v in range(256))
        pixels[c::3] = channel.translate(table)
    return encode_png(width, height, bytes(pixels), alpha=False)


def _to_rgba(image: DecodedImage) -> bytearray:
    src, channels = image.pixels, image.channels
    count = image.width * image.height
    out = bytearray(b"\xff" * (count * 4))
    # slice assignment moves a whole channel at C speed
    if channels == 4:
        out[:] = src
    elif channels == 3:
        for c in range(3):
            out[c::4] = src[c::3]
    else:
        for c in range(3):
            out[c::4] = src[0::channels]
        if channels == 2:
            out[3::4] = src[1::2]
    return out


def _source(data: bytes | None, key: bytes) -> DecodedImage:
    image = reference_image(data)
    if image is not None:
        return DecodedImage(image.width, image.height, 4, bytes(_to_rgba(image)))
    width, height = ratio_size("1:1", "1K")
    rgb = DecodedImage(width, height, 3, bytes(_render(width, height, key)))
    return DecodedImage(width, height, 4, bytes(_to_rgba(rgb)))


def upscale_png(data: bytes | None, key: bytes) -> bytes:
    """Twice the size of ``data`` (a PNG) by pixel doubling; a made-up base image when ``None``."""
    image = _source(data, key)
    width, height = image.width * 2, image.height * 2
    stride = image.width * 4
    out = bytearray()
    for y in range(image.height):
        row = image.pixels[y * stride : (y + 1) * stride]
        doubled = bytearray(stride * 2)
        for channel in range(4):  # slice assignment doubles a whole row per channel at C speed
            doubled[channel::8] = row[channel::4]
            doubled[4 + channel :: 8] = row[channel::4]
        out += doubled
        out += doubled
    opaque = out[3::4].count(255) == width * height
    if opaque:
        rgb = bytearray(width * height * 3)
        rgb[0::3], rgb[1::3], rgb[2::3] = out[0::4], out[1::4], out[2::4]
        return encode_png(width, height, bytes(rgb), alpha=False)
    return encode_png(width, height, bytes(out), alpha=True)


def remove_background_png(data: bytes | None, key: bytes) -> bytes:
    """An RGBA PNG: the central ellipse of the source kept opaque, the rest fully transparent."""
    image = _source(data, key)
    width, height = image.width, image.height
    out = bytearray(width * height * 4)  # transparent black everywhere but the subject
    cx, cy = (width - 1) / 2, (height - 1) / 2
    rx, ry = max(1.0, width * 0.35), max(1.0, height * 0.35)
    for y in range(height):
        dy = (y - cy) / ry
        if abs(dy) > 1.0:
            continue
        half = rx * (1.0 - dy * dy) ** 0.5
        x0, x1 = max(0, math.ceil(cx - half)), min(width - 1, math.floor(cx + half))
        if x1 < x0:
            continue
        start, end = (y * width + x0) * 4, (y * width + x1 + 1) * 4
        out[start:end] = image.pixels[start:end]
        out[start + 3 : end : 4] = b"\xff" * (x1 - x0 + 1)
    return encode_png(width, height, bytes(out), alpha=True)
