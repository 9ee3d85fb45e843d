"""The built-in judge: the image exists, decodes, has the asked aspect ratio and is not blank."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from kierouter import ImageFile, ImageRequest, TaskStatus
from kierouter._images import encode_png
from kierouter.judging import BUILTIN_JUDGES, BasicJudge, JudgeContext, Verdict, basic_judge


def _pattern(width: int, height: int) -> bytes:
    return bytes(
        (x * 7 + y * 13 + c * 50) % 256
        for y in range(height)
        for x in range(width)
        for c in range(3)
    )


def _context(tmp_path: Path, data: bytes | None, *, ratio: str | None = None) -> JudgeContext:
    files: tuple[ImageFile, ...] = ()
    if data is not None:
        path = tmp_path / "image.png"
        path.write_bytes(data)
        files = (
            ImageFile(
                path=str(path),
                url="https://x.test/a.png",
                sha256="",
                size=len(data),
                content_type="image/png",
            ),
        )
    return JudgeContext(
        request=ImageRequest(prompt="a fox", aspect_ratio=ratio),
        model="google/nano-banana",
        status=TaskStatus(task_id="t1", state="success", urls=("https://x.test/a.png",)),
        files=files,
    )


def _jpeg_header(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\x00" * 4000 + b"\xff\xd9"


async def test_accepts_a_real_picture_with_the_requested_ratio(tmp_path: Path) -> None:
    """A patterned 16:9 PNG passes a 16:9 request."""
    verdict = await basic_judge(
        _context(tmp_path, encode_png(128, 72, _pattern(128, 72)), ratio="16:9")
    )
    assert verdict == Verdict(True, "")


async def test_rejects_the_wrong_aspect_ratio(tmp_path: Path) -> None:
    """A square image for a 16:9 request is rejected with the sizes in the reason."""
    verdict = await basic_judge(
        _context(tmp_path, encode_png(64, 64, _pattern(64, 64)), ratio="16:9")
    )
    assert not verdict.accepted
    assert "64x64" in verdict.reason


def test_ratio_tolerance_is_configurable(tmp_path: Path) -> None:
    """A 2 % ratio error passes the default 3 % tolerance and fails a 1 % one."""
    context = _context(tmp_path, encode_png(102, 100, _pattern(102, 100)), ratio="1:1")
    assert BasicJudge().check(context).accepted
    assert not BasicJudge(tolerance=0.01).check(context).accepted


def test_no_ratio_or_auto_skips_the_ratio_check(tmp_path: Path) -> None:
    """Without a requested ratio (or with auto) any shape is fine."""
    png = encode_png(100, 30, _pattern(100, 30))
    assert basic_judge.check(_context(tmp_path, png)).accepted
    assert basic_judge.check(_context(tmp_path, png, ratio="auto")).accepted


def test_rejects_a_blank_image(tmp_path: Path) -> None:
    """A single-colour image (even a coloured one) is blank."""
    verdict = basic_judge.check(_context(tmp_path, encode_png(32, 32, bytes([200, 30, 30]) * 1024)))
    assert not verdict.accepted
    assert "blank" in verdict.reason


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<html>not an image</html>", "does not decode"),
        (b"", "empty"),
        (encode_png(16, 16, _pattern(16, 16))[:60], "does not decode"),
    ],
)
def test_rejects_files_that_do_not_decode(tmp_path: Path, data: bytes, words: str) -> None:
    """Garbage, empty and truncated files are rejected, saying why."""
    verdict = basic_judge.check(_context(tmp_path, data))
    assert not verdict.accepted
    assert words in verdict.reason


def test_rejects_when_there_is_nothing_to_look_at(tmp_path: Path) -> None:
    """No downloaded file, or a file that vanished, is a rejection."""
    assert not basic_judge.check(_context(tmp_path, None)).accepted
    context = _context(tmp_path, encode_png(8, 8, _pattern(8, 8)))
    Path(context.files[0].path).unlink()
    verdict = basic_judge.check(context)
    assert not verdict.accepted
    assert "missing" in verdict.reason


def test_jpeg_is_checked_from_its_header(tmp_path: Path) -> None:
    """A JPEG's size comes from its header: the ratio is checked without decoding pixels."""
    assert basic_judge.check(_context(tmp_path, _jpeg_header(160, 90), ratio="16:9")).accepted
    verdict = basic_judge.check(_context(tmp_path, _jpeg_header(90, 160), ratio="16:9"))
    assert not verdict.accepted


def test_basic_is_a_builtin_judge_name() -> None:
    """``judge="basic"`` names the built-in judge."""
    assert BUILTIN_JUDGES["basic"] is basic_judge
