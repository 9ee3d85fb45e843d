"""docs/batch.md is true: its input examples parse, its TOML loads, its fields are the real ones."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from kierouter.batch import ROW_FIELDS, parse_rows

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "batch.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE, flags=re.S)


def test_input_examples_parse() -> None:
    """The text and JSON Lines examples are valid batch files (the JSON one has a pipeline)."""
    text, *_ = _blocks("text")
    assert len(parse_rows(text, fmt="text")) == 2
    jsonl = _blocks("json")[0]
    rows = parse_rows(jsonl, fmt="jsonl")
    assert rows[2].steps == ("generate", "upscale", "remove-background")


def test_field_table_lists_every_field() -> None:
    """Every column a row may carry is named in the page's field table."""
    for name in ROW_FIELDS:
        assert f"`{name}`" in PAGE, name


def test_toml_example_loads() -> None:
    """The [batch] example is a valid kierouter configuration."""
    from kierouter._config import parse_config

    (source,) = _blocks("toml")
    config = parse_config(tomllib.loads(source))
    assert config.batch.pipeline == ("upscale",) and config.batch.create_rate == 20
