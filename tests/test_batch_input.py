"""Batch files: text, JSONL and CSV rows with options and pipelines; bad rows with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kierouter import ValidationError
from kierouter.batch import BatchInputError, parse_rows, read_rows


def test_text_rows_skip_blanks_and_comments() -> None:
    """One prompt a line; blank and # lines are not rows; rows keep their line numbers."""
    rows = parse_rows("a red fox\n\n# a note\na lighthouse at dawn\n")
    assert [(r.key, r.line, r.request.prompt) for r in rows] == [
        ("row-1", 1, "a red fox"),
        ("row-2", 4, "a lighthouse at dawn"),
    ]
    assert rows[0].steps == ("generate",) and rows[0].policy is None


def test_jsonl_rows_carry_options_and_pipelines() -> None:
    """JSONL rows set policy, ratio, resolution, seed, reference images, negative prompt,
    model options and pipeline steps."""
    text = (
        '{"prompt": "a fox", "aspect_ratio": "16:9", "seed": 7, "policy": "budget",'
        ' "resolution": "2K", "negative_prompt": "blur", "options": {"seedream": {"x": 1}}}\n'
        '{"prompt": "make it night", "reference_images": ["https://example.com/a.png"]}\n'
        '{"prompt": "a mug", "id": "mug-1",'
        ' "steps": ["generate", "upscale", "remove-background"]}\n'
        '"just a prompt"\n'
    )
    fox, night, mug, plain = parse_rows(text, fmt="jsonl")
    assert (fox.request.aspect_ratio, fox.request.seed, fox.policy) == ("16:9", 7, "budget")
    assert fox.request.resolution == "2K" and fox.request.negative_prompt == "blur"
    assert fox.request.options == {"seedream": {"x": 1}}
    assert night.request.kind == "edit" and night.request.images == ("https://example.com/a.png",)
    assert mug.key == "mug-1" and mug.steps == ("generate", "upscale", "remove-background")
    assert mug.job_key("upscale") == "mug-1-upscale"
    assert plain.request.prompt == "just a prompt"


def test_csv_rows(tmp_path: Path) -> None:
    """CSV with a header: list cells split on | ; , or spaces, or hold a JSON list."""
    path = tmp_path / "rows.csv"
    path.write_text(
        "prompt,seed,images,steps,aspect_ratio\n"
        'a fox,3,,"generate|upscale",1:1\n'
        "recolour it,,https://example.com/a.png https://example.com/b.png,,\n"
        ',,https://example.com/c.png,"[""remove-background""]",\n'
    )
    fox, edit, cutout = read_rows(path)
    assert fox.request.seed == 3 and fox.steps == ("generate", "upscale") and fox.line == 2
    assert edit.request.images == ("https://example.com/a.png", "https://example.com/b.png")
    assert cutout.steps == ("remove-background",) and cutout.request.kind == "remove-background"


def test_every_bad_row_is_reported_with_its_line() -> None:
    """All bad rows are listed at once, each with its line number and the field at fault."""
    text = (
        '{"prompt": "fine"}\n'
        "{not json\n"
        '{"prompt": "x", "seed": "abc"}\n'
        '{"prompt": "x", "colour": "red"}\n'
        '{"prompt": "x", "steps": ["generate", "sharpen"]}\n'
        '{"prompt": "", "aspect_ratio": "wide"}\n'
        '{"prompt": "x", "images": ["file:///etc/passwd"]}\n'
        '{"prompt": "x", "steps": ["upscale", "generate"]}\n'
        '{"prompt": "x", "resolution": "8K"}\n'
    )
    with pytest.raises(BatchInputError) as info:
        parse_rows(text, fmt="jsonl", source="rows.jsonl")
    lines = [line for line, _ in info.value.problems]
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9]
    message = str(info.value)
    assert "line 4: colour: unknown column" in message
    assert "sharpen" in message and "allowed: generate, upscale, remove-background" in message
    assert "line 9: resolution" in message and "rows.jsonl" in message
    assert isinstance(info.value, ValidationError)


def test_duplicate_ids_csv_extra_cells_and_empty_files(tmp_path: Path) -> None:
    """Two rows with one id, a CSV row with more cells than columns, and a file with no rows
    are refused before anything runs."""
    with pytest.raises(BatchInputError, match="line 2: id 'a' already used on line 1"):
        parse_rows('{"prompt": "x", "id": "a"}\n{"prompt": "y", "id": "a"}\n', fmt="jsonl")
    with pytest.raises(BatchInputError, match="line 2: more cells"):
        parse_rows("prompt\na fox,extra\n", fmt="csv")
    with pytest.raises(ValidationError, match="no rows"):
        parse_rows("\n# nothing\n")
    with pytest.raises(ValidationError, match="cannot read"):
        read_rows(tmp_path / "missing.txt")
