"""A JPEG's colours without a JPEG library: its DC coefficients, drawn as a coarse picture.

An edit model in the emulator shows what it was given: its result takes the reference image's
average colour. For a JPEG reference that needs no full decoder. The DC coefficient of each
8 x 8 block is that block's mean (times its quantiser), so reading the entropy-coded data while
skipping the AC coefficients gives one colour per MCU (8 to 16 pixels square): a picture at 1/8
to 1/16 of the size whose mean is the image's mean. Baseline and extended sequential Huffman
JPEGs (SOF0/SOF1, 8 bits, greyscale or YCbCr) are read; progressive, lossless or arithmetic ones
give ``None``. Only the first ``max_mcus`` MCUs are read (the rows further down are left out),
which keeps a large photo to a fraction of a second.
"""

from __future__ import annotations

import math

from kierouter._images import DecodedImage

__all__ = ["jpeg_preview"]

_SOF_SEQUENTIAL = (0xC0, 0xC1)
_SOF_OTHER = (0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def _u16(data: bytes, at: int) -> int:
    return (data[at] << 8) | data[at + 1]


def _huffman_table(counts: bytes, symbols: bytes) -> list[int]:
    """A 16-bit lookup: entry ``peek`` is ``symbol | length << 8`` (0 for an invalid code)."""
    table = [0] * 65536
    code = 0
    k = 0
    for length in range(1, 17):
        span = 1 << (16 - length)
        for _ in range(counts[length - 1]):
            start = code << (16 - length)
            table[start : start + span] = [symbols[k] | (length << 8)] * span
            code += 1
            k += 1
        code <<= 1
    return table


def _scan_segments(data: bytes, pos: int) -> list[bytes]:
    """The entropy-coded data from ``pos``, unstuffed, split at restart markers."""
    segments: list[bytes] = []
    out = bytearray()
    end = len(data)
    while pos < end:
        ff = data.find(b"\xff", pos)
        if ff < 0 or ff + 1 >= end:
            out += data[pos:]
            break
        out += data[pos:ff]
        nxt = data[ff + 1]
        if nxt == 0x00:
            out.append(0xFF)
            pos = ff + 2
        elif 0xD0 <= nxt <= 0xD7:
            segments.append(bytes(out))
            out = bytearray()
            pos = ff + 2
        elif nxt == 0xFF:
            pos = ff + 1
        else:
            break
    segments.append(bytes(out))
    return segments


class _Bits:
    """Reads Huffman symbols and raw bits from one unstuffed segment."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.buf = 0
        self.count = 0

    def _fill(self, need: int) -> None:
        while self.count < need:
            byte = self.data[self.pos] if self.pos < len(self.data) else 0xFF
            self.pos += 1
            self.buf = ((self.buf << 8) | byte) & 0xFFFFFFFF
            self.count += 8

    def symbol(self, table: list[int]) -> int:
        self._fill(16)
        entry = table[(self.buf >> (self.count - 16)) & 0xFFFF]
        if not entry:
            raise ValueError("invalid Huffman code")
        self.count -= entry >> 8
        return entry & 0xFF

    def bits(self, size: int) -> int:
        if not size:
            return 0
        self._fill(size)
        self.count -= size
        value = (self.buf >> self.count) & ((1 << size) - 1)
        return value if value >= 1 << (size - 1) else value - (1 << size) + 1


def _rgb(y: float, cb: float, cr: float) -> tuple[int, int, int]:
    def clamp(v: float) -> int:
        return max(0, min(255, round(v)))

    return (
        clamp(y + 1.402 * (cr - 128)),
        clamp(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)),
        clamp(y + 1.772 * (cb - 128)),
    )


def jpeg_preview(data: bytes, *, max_mcus: int = 4096) -> DecodedImage | None:
    """An RGB picture of ``data`` at one pixel per MCU, or ``None`` when it cannot be read."""
    try:
        return _decode(bytes(data), max_mcus)
    except (IndexError, ValueError, KeyError, ZeroDivisionError):
        return None


def _decode(data: bytes, max_mcus: int) -> DecodedImage | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    quant: dict[int, int] = {}
    tables: dict[tuple[int, int], list[int]] = {}
    components: list[tuple[int, int, int, int]] = []  # id, h, v, quant table
    width = height = restart = 0
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = _u16(data, pos + 2)
        segment = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xDB:
            i = 0
            while i < len(segment):
                wide, table_id = segment[i] >> 4, segment[i] & 15
                quant[table_id] = _u16(segment, i + 1) if wide else segment[i + 1]
                i += 129 if wide else 65
        elif marker == 0xC4:
            i = 0
            while i < len(segment):
                counts = segment[i + 1 : i + 17]
                total = sum(counts)
                key = (segment[i] >> 4, segment[i] & 15)
                tables[key] = _huffman_table(counts, segment[i + 17 : i + 17 + total])
                i += 17 + total
        elif marker in _SOF_SEQUENTIAL:
            if segment[0] != 8:
                return None
            height, width = _u16(segment, 1), _u16(segment, 3)
            components = [
                (segment[6 + 3 * k], segment[7 + 3 * k] >> 4, segment[7 + 3 * k] & 15,
                 segment[8 + 3 * k])
                for k in range(segment[5])
            ]  # fmt: skip
        elif marker in _SOF_OTHER:
            return None
        elif marker == 0xDD:
            restart = _u16(segment, 0)
        elif marker == 0xDA:
            chosen = {segment[1 + 2 * k]: segment[2 + 2 * k] for k in range(segment[0])}
            if not components or len(chosen) != len(components) or len(components) not in (1, 3):
                return None
            return _scan(data, pos, components, chosen, quant, tables, width, height, restart,
                         max_mcus)  # fmt: skip
    return None


def _scan(
    data: bytes,
    pos: int,
    components: list[tuple[int, int, int, int]],
    chosen: dict[int, int],
    quant: dict[int, int],
    tables: dict[tuple[int, int], list[int]],
    width: int,
    height: int,
    restart: int,
    max_mcus: int,
) -> DecodedImage:
    if len(components) == 1:  # a non-interleaved scan: one block per MCU
        components = [(components[0][0], 1, 1, components[0][3])]
    h_max = max(c[1] for c in components)
    v_max = max(c[2] for c in components)
    across = math.ceil(width / (8 * h_max))
    down = math.ceil(height / (8 * v_max))
    plan = [
        (c[1] * c[2], tables[(0, chosen[c[0]] >> 4)], tables[(1, chosen[c[0]] & 15)],
         quant[c[3]] / 8)
        for c in components
    ]  # fmt: skip
    segments = _scan_segments(data, pos)
    rows = min(down, max(1, max_mcus // across))
    colours = bytearray()
    segment_index = 0
    bits = _Bits(segments[0])
    predictors = [0] * len(plan)
    for mcu in range(rows * across):
        if restart and mcu and mcu % restart == 0:
            segment_index += 1
            bits = _Bits(segments[segment_index])
            predictors = [0] * len(plan)
        means = []
        for c, (blocks, dc_table, ac_table, scale) in enumerate(plan):
            total = 0
            for _ in range(blocks):
                predictors[c] += bits.bits(bits.symbol(dc_table))
                total += predictors[c]
                k = 1
                while k < 64:
                    run_size = bits.symbol(ac_table)
                    run, size = run_size >> 4, run_size & 15
                    if size == 0:
                        if run != 15:
                            break
                        k += 16
                        continue
                    bits.bits(size)
                    k += run + 1
            means.append(total / blocks * scale + 128)
        if len(means) == 1:
            grey = max(0, min(255, round(means[0])))
            colours += bytes((grey, grey, grey))
        else:
            colours += bytes(_rgb(*means))
    return DecodedImage(across, rows, 3, bytes(colours))
