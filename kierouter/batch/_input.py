"""Reading a batch file: text (one prompt a line), JSON Lines or CSV, with per-row options.

Every row is checked before anything is spent; all bad rows are reported at once, each with its
line number (:class:`BatchInputError`). ``images`` (and ``mask``) take URLs and local file paths;
a relative path is relative to the batch file's folder and stored absolute, so ``resume`` finds
it from any directory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from kierouter._errors import ValidationError
from kierouter._inputs import input_kind, syntax_problem
from kierouter._models import RESOLUTIONS, ImageRequest

__all__ = [
    "ROW_FIELDS",
    "STEPS",
    "BatchInputError",
    "BatchRow",
    "Step",
    "parse_rows",
    "read_rows",
    "with_pipeline",
]

Step = Literal["generate", "upscale", "remove-background"]
STEPS: tuple[Step, ...] = ("generate", "upscale", "remove-background")
"""Pipeline steps, in the order they may run: each step's input is the previous step's image."""

ROW_FIELDS: tuple[str, ...] = (
    "id",
    "prompt",
    "policy",
    "aspect_ratio",
    "resolution",
    "seed",
    "count",
    "images",
    "reference_images",
    "mask",
    "negative_prompt",
    "language",
    "task",
    "options",
    "steps",
)
"""Columns (CSV) or keys (JSONL) a row may carry."""
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_SPLIT = re.compile(r"[\s|;,]+")


class BatchInputError(ValidationError):
    """Rows of a batch file that cannot run, each with its line number (nothing was spent).

    ``problems`` holds ``(line, message)`` pairs.
    """

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        shown = "; ".join(f"line {line}: {msg}" for line, msg in problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__("rows", f"{len(problems)} bad row(s) in {source}: {shown}{more}")


class BatchRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of a batch: its number, its line in the file, its request and pipeline.

    ``key`` names the row's jobs (``row-7`` → job keys ``row-7-generate``, ``row-7-upscale``) and
    files. ``steps`` is the pipeline; the first step uses ``request``, each later one the
    previous step's image.
    """

    index: int
    line: int
    key: str
    request: ImageRequest
    policy: str | None = None
    steps: tuple[Step, ...] = ("generate",)

    def job_key(self, step: str) -> str:
        """The journal key of one step of this row."""
        return f"{self.key}-{step}"


def _format_of(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".text", ".prompts"):
        return "text"
    first = text.lstrip()[:1]
    return "jsonl" if first == "{" else "text"


def _as_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(f"{name}: not a JSON list: {text[:60]!r}") from None
        else:
            return tuple(part for part in _SPLIT.split(text) if part)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}: must be a list of strings")
    return tuple(value)


def _as_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise ValueError(f"{name}: must be an integer, got {value!r}")


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be text, got {value!r}")
    return value.strip() or None


def _steps(value: Any) -> tuple[Step, ...]:
    names = _as_list(value, "steps")
    if not names:
        return ("generate",)
    out: list[Step] = []
    for name in names:
        if name not in STEPS:
            raise ValidationError("steps", f"unknown step {name!r}", allowed=STEPS)
        if name in out:
            raise ValidationError("steps", f"step {name!r} appears twice")
        if name == "generate" and out:
            raise ValidationError("steps", "generate can only be the first step")
        out.append(name)
    return tuple(out)


def _located(value: str, base_dir: Path) -> str:
    """A local path made absolute against the batch file's folder; URLs and data URIs as given."""
    if input_kind(value) != "file" or syntax_problem(value) is not None:
        return value  # a URL, bytes, or something ImageRequest.validate() names
    return str(base_dir / Path(value).expanduser())


def _row(fields: Mapping[str, Any], index: int, line: int, base_dir: Path) -> BatchRow:
    unknown = sorted(set(fields) - set(ROW_FIELDS))
    if unknown:
        raise ValidationError(unknown[0], "unknown column", allowed=ROW_FIELDS)
    steps = _steps(fields.get("steps"))
    images = _as_list(fields.get("images"), "images") + _as_list(
        fields.get("reference_images"), "reference_images"
    )
    images = tuple(_located(image, base_dir) for image in images)
    mask = _text(fields.get("mask"), "mask")
    options = fields.get("options") or {}
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            raise ValidationError("options", "not a JSON object") from None
    if not isinstance(options, dict):
        raise ValidationError("options", "must be an object keyed by model id or family")
    resolution = _text(fields.get("resolution"), "resolution")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ValidationError("resolution", f"{resolution!r}", allowed=RESOLUTIONS)
    task = _text(fields.get("task"), "task")
    if steps[0] != "generate":
        task = steps[0]
    count = _as_int(fields.get("count"), "count")
    try:
        request = msgspec.convert(
            {
                "prompt": _text(fields.get("prompt"), "prompt") or "",
                "task": task,
                "aspect_ratio": _text(fields.get("aspect_ratio"), "aspect_ratio"),
                "resolution": resolution,
                "seed": _as_int(fields.get("seed"), "seed"),
                "count": 1 if count is None else count,
                "images": list(images),
                "mask": None if mask is None else _located(mask, base_dir),
                "negative_prompt": _text(fields.get("negative_prompt"), "negative_prompt"),
                "language": _text(fields.get("language"), "language"),
                "options": options,
            },
            ImageRequest,
        ).validate()
    except msgspec.ValidationError as exc:
        raise ValidationError("row", str(exc)) from None
    if len(steps) > 1 and request.count != 1:
        raise ValidationError("count", "a pipeline row makes one image (count must be 1)")
    key = _text(fields.get("id"), "id") or f"row-{index}"
    if not _ID.match(key):
        raise ValidationError("id", "1–80 characters of A-Z a-z 0-9 . _ - (starting alphanumeric)")
    return BatchRow(
        index=index,
        line=line,
        key=key,
        request=request,
        policy=_text(fields.get("policy"), "policy"),
        steps=steps,
    )


def _records(text: str, fmt: str) -> Iterator[tuple[int, Any]]:
    """``(line, fields or an exception)`` for each data row."""
    if fmt == "text":
        for line, raw in enumerate(text.splitlines(), start=1):
            prompt = raw.strip()
            if prompt and not prompt.startswith("#"):
                yield line, {"prompt": prompt}
    elif fmt == "jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield line, ValueError(f"not JSON: {exc.msg}")
                continue
            if isinstance(value, str):
                value = {"prompt": value}
            if not isinstance(value, dict):
                yield line, ValueError("each line must be a JSON object (or a prompt string)")
                continue
            yield line, value
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None:
            return
        headers = [h.strip() for h in reader.fieldnames]
        reader.fieldnames = headers
        for record in reader:
            line = reader.line_num
            if None in record:
                yield line, ValueError("more cells than header columns")
                continue
            if all((v or "").strip() == "" for v in record.values()):
                continue
            yield line, {k: (v.strip() if isinstance(v, str) else v) for k, v in record.items()}


def parse_rows(
    text: str,
    *,
    fmt: str = "text",
    source: str = "<batch>",
    base_dir: str | os.PathLike[str] | None = None,
) -> list[BatchRow]:
    """Parse a batch's text; raise :class:`BatchInputError` listing every bad row.

    Relative image paths are relative to ``base_dir`` (default: the current directory) and are
    stored absolute."""
    folder = Path(base_dir if base_dir is not None else os.getcwd()).absolute()
    if fmt not in ("text", "jsonl", "csv"):
        raise ValidationError("format", f"{fmt!r}", allowed=("text", "jsonl", "csv"))
    rows: list[BatchRow] = []
    problems: list[tuple[int, str]] = []
    keys: dict[str, int] = {}
    for line, fields in _records(text, fmt):
        if isinstance(fields, Exception):
            problems.append((line, str(fields)))
            continue
        try:
            row = _row(fields, len(rows) + len(problems) + 1, line, folder)
        except (ValidationError, ValueError) as exc:
            problems.append((line, str(exc)))
            continue
        if row.key in keys:
            problems.append((line, f"id {row.key!r} already used on line {keys[row.key]}"))
            continue
        keys[row.key] = line
        rows.append(row)
    if problems:
        raise BatchInputError(source, problems)
    if not rows:
        raise ValidationError("rows", f"{source} has no rows")
    return rows


def read_rows(path: str | os.PathLike[str], *, fmt: str | None = None) -> list[BatchRow]:
    """Read a batch file (format from ``fmt`` or the file name: .txt, .jsonl, .csv); relative
    image paths in it are relative to its folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError("file", f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValidationError("file", f"{file} is not UTF-8 text") from None
    return parse_rows(
        text, fmt=fmt or _format_of(file, text), source=str(file), base_dir=file.parent
    )


def with_pipeline(rows: list[BatchRow], pipeline: tuple[str, ...] | list[str]) -> list[BatchRow]:
    """Give rows that only generate the steps ``pipeline`` after it (e.g. the configuration's
    ``[batch] pipeline = ["upscale"]``); rows with their own steps keep them."""
    if not pipeline:
        return rows
    steps = _steps(["generate", *pipeline])
    out = []
    for row in rows:
        if row.steps == ("generate",) and row.request.count == 1:
            row = msgspec.structs.replace(row, steps=steps)
        out.append(row)
    return out
