"""Local input images in a request: what ImageRequest stores, and the checks made before paying."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from kierouter import Capabilities, ImageRequest, ModelCard, Pricing, ValidationError
from kierouter._images import encode_png
from kierouter._input_fit import fit_plan
from kierouter._inputs import check_inputs
from kierouter.policy import Plan, Policy, plan

FIXTURES = Path(__file__).parent / "fixtures" / "images"


def png(path: Path, rgb: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> Path:
    """Write a solid-colour PNG and return its path."""
    path.write_bytes(encode_png(size, size, bytes(rgb) * size * size))
    return path


def padded_png(path: Path, size: int) -> Path:
    """A PNG file of ``size`` bytes (a small image, then padding): sizes without encoding time."""
    data = encode_png(16, 16, bytes(16 * 16 * 3))
    path.write_bytes(data + bytes(size - len(data)))
    return path


def test_paths_pathlike_and_bytes_are_stored_as_strings_that_survive_json(tmp_path: Path) -> None:
    """A Path becomes its string, bytes a data URI; the request round-trips through JSON."""
    photo = png(tmp_path / "photo.png")
    data = photo.read_bytes()
    request = ImageRequest(prompt="x", images=[photo, data, "https://a/b.png"], mask=photo)
    assert request.images[0] == str(photo)
    assert request.images[1].startswith("data:image/png;base64,")
    assert request.images[2] == "https://a/b.png"
    assert request.mask == str(photo)
    decoded = msgspec.json.decode(msgspec.json.encode(request), type=ImageRequest)
    assert decoded == request
    assert [image.size for image in check_inputs(decoded)] == [len(data), len(data), len(data)]


def test_a_single_image_may_be_given_on_its_own(tmp_path: Path) -> None:
    """images=path is one image, not the characters of its name."""
    assert ImageRequest(prompt="x", images="photo.png").images == ("photo.png",)
    assert ImageRequest(prompt="x", images=tmp_path).images == (str(tmp_path),)


def test_bytes_in_the_repr_are_summarised() -> None:
    """A megabyte of bytes does not flood a repr (or a log line) with base64."""
    request = ImageRequest(prompt="x", images=[b"\x89PNG" + bytes(1_000_000)])
    text = repr(request)
    assert len(text) < 400
    assert "1000004 bytes" in text


def test_an_input_of_another_type_names_its_field() -> None:
    """An int among the images is refused at once, naming images[1]."""
    with pytest.raises(ValidationError) as info:
        ImageRequest(prompt="x", images=["https://a/b.png", 3])  # type: ignore[list-item]
    assert info.value.field == "images[1]"


def test_jpeg_and_webp_are_told_by_their_bytes_not_their_names(tmp_path: Path) -> None:
    """A JPEG saved as .png and a WEBP without a suffix are recognised for what they are."""
    disguised = tmp_path / "looks.png"
    disguised.write_bytes((FIXTURES / "orange.jpg").read_bytes())
    bare = tmp_path / "picture"
    bare.write_bytes((FIXTURES / "purple.webp").read_bytes())
    found = check_inputs(ImageRequest(prompt="x", images=[disguised, bare]))
    assert [(f.format, f.mime) for f in found] == [("jpeg", "image/jpeg"), ("webp", "image/webp")]


def test_a_jpeg_whose_frame_header_comes_after_big_metadata_is_accepted(tmp_path: Path) -> None:
    """Big metadata segments (EXIF, ICC) before a JPEG's frame header do not make it 'broken'."""
    data = (FIXTURES / "teal.jpg").read_bytes()
    segment = b"\xff\xef" + (65535).to_bytes(2, "big") + bytes(65533)
    photo = tmp_path / "exif.jpg"
    photo.write_bytes(data[:2] + segment * 2 + data[2:])
    assert check_inputs(ImageRequest(prompt="x", images=[photo]))[0].format == "jpeg"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        (b"hello, I am a text file", "it is text"),
        (b"", "an empty file"),
        (b"GIF89a" + bytes(40), "a GIF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\x89PNG\r\n\x1a\n" + bytes(8), "a broken image"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field_and_the_file(
    tmp_path: Path, content: bytes | None, words: str
) -> None:
    """Missing, text, empty, GIF, SVG, truncated: each a ValidationError on images[1] naming it."""
    bad = tmp_path / "bad.png"
    if content is not None:
        bad.write_bytes(content)
    good = png(tmp_path / "good.png")
    with pytest.raises(ValidationError) as info:
        check_inputs(ImageRequest(prompt="x", images=[good, bad]))
    assert info.value.field == "images[1]"
    assert str(bad) in str(info.value) and words in str(info.value)


def test_a_folder_and_an_unreadable_file_are_refused(tmp_path: Path) -> None:
    """A folder is not an image; a file without read permission says it cannot be read."""
    with pytest.raises(ValidationError, match="is a folder"):
        check_inputs(ImageRequest(prompt="x", images=[tmp_path]))
    locked = png(tmp_path / "locked.png")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as a user who can read any file")
        with pytest.raises(ValidationError, match="cannot be read"):
            check_inputs(ImageRequest(prompt="x", mask=locked, images=["https://a/b.png"]))
    finally:
        locked.chmod(0o600)


def test_bad_bytes_are_refused_naming_the_field() -> None:
    """Bytes that are no image fail on their field, saying the bytes given are not an image."""
    with pytest.raises(ValidationError) as info:
        check_inputs(ImageRequest(prompt="x", images=["https://a/b.png"], mask=b"plain text"))
    assert info.value.field == "mask"
    assert "bytes given are not a PNG, JPEG or WEBP" in str(info.value)


def _card(model: str, family: str, limit_mb: int, credits: float) -> ModelCard:
    return ModelCard(
        id=model,
        family=family,
        task_kinds=("edit",),
        pricing=Pricing(credits=credits),
        latency_p50=10,
        latency_p90=20,
        quality=8,
        capabilities=Capabilities(
            max_reference_images=4, mask=True, max_image_bytes=limit_mb * 1024**2
        ),
    )


CARDS = {
    card.id: card
    for card in (
        _card("cheap-small", "a", 1, 1.0),
        _card("mid-small", "b", 1, 2.0),
        _card("dear-large", "c", 4, 9.0),
    )
}
POLICY = Policy(name="cheap-first", ordering="objective", max_steps=2)


def _fit(request: ImageRequest) -> Plan:
    return fit_plan(request, POLICY, CARDS, lambda p: plan(request, CARDS, p))


def test_a_file_too_big_for_some_models_plans_the_ones_that_take_it(tmp_path: Path) -> None:
    """A 2 MB file skips the 1 MB models (listed with their limit); the 4 MB one moves up."""
    big = padded_png(tmp_path / "big.png", 2_100_000)
    small = png(tmp_path / "small.png")
    assert plan(ImageRequest(prompt="x", images=[big]), CARDS, POLICY).models == (
        "cheap-small",
        "mid-small",
    )
    fitted = _fit(ImageRequest(prompt="x", images=[small, big]))
    assert fitted.models == ("dear-large",)
    only = fitted.steps[0]  # one rung left: its price whenever KIE bills it
    assert only.credits == 9.0
    assert fitted.expected_credits == pytest.approx(only.credits * only.p_billed)
    size = f"{big.stat().st_size / 1024**2:.3g} MB"
    reasons = {d.model: d.reason for d in fitted.dropped}
    assert reasons["cheap-small"] == f"takes input images up to 1 MB; images[1] is {size}"
    assert reasons["mid-small"] == reasons["cheap-small"]
    assert _fit(ImageRequest(prompt="x", images=[small])).models == ("cheap-small", "mid-small")


def test_a_file_too_big_for_every_model_is_refused_naming_it(tmp_path: Path) -> None:
    """Over every limit: a ValidationError naming the field, the file and the largest limit."""
    huge = padded_png(tmp_path / "huge.png", 5 * 1024**2)
    with pytest.raises(ValidationError) as info:
        _fit(ImageRequest(prompt="x", images=["https://a/b.png"], mask=huge))
    assert info.value.field == "mask"
    assert str(huge) in str(info.value) and "dear-large, takes 4 MB" in str(info.value)
