"""Helpers shared by the CLI commands: output, tables, errors, loading a registry."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from kierouter._errors import (
    AmbiguousSubmissionError,
    AuthError,
    ConfigurationError,
    InsufficientCreditsError,
    KieRouterError,
    PaidUndeliveredError,
    ValidationError,
)

__all__ = [
    "exit_code_for",
    "print_error",
    "print_json",
    "print_table",
    "registry_from_env",
    "request_from_args",
]


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def print_error(message: str) -> None:
    """Write an error line to stderr."""
    sys.stderr.write(f"kierouter: error: {message}\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a plain aligned table to stdout."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        sys.stdout.write(line + "\n")
        if n == 0:
            sys.stdout.write("  ".join("-" * w for w in widths) + "\n")


def exit_code_for(exc: KieRouterError) -> int:
    """The documented exit code for an error (see :mod:`kierouter.cli`)."""
    if isinstance(exc, ValidationError | ConfigurationError):
        return 2
    if isinstance(exc, AuthError):
        return 3
    if isinstance(exc, InsufficientCreditsError):
        return 4
    if isinstance(exc, AmbiguousSubmissionError):
        return 5
    if isinstance(exc, PaidUndeliveredError):
        return 6
    return 1


def registry_from_env() -> Any:
    """Load the plugin registry from installed entry points (honouring the env switches)."""
    from kierouter._plugins import load_registry

    return load_registry()


def request_from_args(args: Any) -> Any:
    """The :class:`~kierouter.ImageRequest` described by the request options ``generate`` and
    ``explain`` share."""
    from kierouter._models import ImageRequest

    return ImageRequest(
        prompt=args.prompt,
        task=args.task,
        images=tuple(args.image),
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        count=args.count,
        seed=args.seed,
        negative_prompt=args.negative_prompt,
        language=args.language,
    )
