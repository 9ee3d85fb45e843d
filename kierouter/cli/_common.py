"""Helpers shared by the CLI commands: output, tables, errors, exit codes, loading a registry."""

from __future__ import annotations

import os
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
    "EXIT_CODES",
    "CliError",
    "exit_code_for",
    "no_plan_message",
    "plural",
    "print_error",
    "print_json",
    "print_table",
    "registry_from_env",
    "request_from_args",
    "rounded",
    "table_width",
]

#: Every exit code a command returns (docs/cli.md prints this table).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "the job or batch failed",
    2: "bad usage, configuration or input (nothing was sent)",
    3: "KIE refused the key (401 / 433), or no key is set",
    4: "insufficient credits (402)",
    5: "an ambiguous submission needs reconciling",
    6: "KIE made and billed the image but it could not be saved (kierouter fetch gets it)",
    130: "interrupted (Ctrl-C)",
    141: "the reader of the output went away (| head)",
}


class CliError(Exception):
    """A command-line error: one line for stderr and the exit code it ends with."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def rounded(value: Any) -> Any:
    """``value`` with every float cut to 9 significant digits: sums of prices print as
    179.9392, not 179.93919999999997."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout, floats rounded (see :func:`rounded`)."""
    data = rounded(msgspec.to_builtins(value))
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n")


def print_error(message: str) -> None:
    """Write an error line to stderr."""
    sys.stderr.write(f"kierouter: error: {message}\n")


def plural(count: float, word: str, words: str | None = None) -> str:
    """``1 image``, ``2 images``, ``1.5 credits``."""
    return f"{count:g} {word if count == 1 else (words or word + 's')}"


def table_width() -> int | None:
    """Columns a table may use: ``$COLUMNS``, else the terminal's; ``None`` (no limit) when
    stdout is not a terminal, so piped tables keep every column on one line."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        if sys.stdout.isatty():
            return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        pass
    return None


def _numeric(cell: str) -> bool:
    text = cell.strip().lstrip("≈$").rstrip("%")
    try:
        float(text)
    except ValueError:
        return text in ("-", "?")
    return True


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    wrap: str | None = None,
    optional: Sequence[str] = (),
) -> None:
    """Write an aligned table to stdout that fits :func:`table_width`.

    Number columns are right-aligned. ``wrap`` names the column whose text wraps (default: the
    last one, when it holds text); when even that is too narrow, the ``optional`` columns are
    left out, in order, until the table fits.
    """
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    body = [[str(c) for c in row] for row in rows]
    columns = list(headers)
    numeric = {
        h: bool(body) and all(_numeric(r[i]) for r in body if r[i]) for i, h in enumerate(columns)
    }
    if wrap is None and columns and not numeric[columns[-1]]:
        wrap = columns[-1]
    width = table_width()
    natural = {h: max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(columns)}
    shown = list(columns)
    for name in optional:
        if width is None or _fits(shown, natural, wrap, width):
            break
        if name != wrap:
            shown.remove(name)
    table = Table(
        box=_rule_box(),
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style=None,
    )
    for name in shown:
        table.add_column(
            name,
            justify="right" if numeric[name] else "left",
            no_wrap=name != wrap,
            overflow="fold",
        )
    index = [columns.index(name) for name in shown]
    for row in body:
        table.add_row(*(row[i] for i in index))
    buffer = StringIO()
    Console(
        file=buffer,
        width=width or 10_000,
        color_system=None,
        highlight=False,
        markup=False,
        emoji=False,
    ).print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def _fits(shown: list[str], natural: dict[str, int], wrap: str | None, width: int) -> bool:
    """Whether the columns fit ``width`` with the wrapping one at least 16 wide (or whole)."""
    fixed = sum(natural[h] for h in shown if h != wrap) + 2 * (len(shown) - 1)
    return width - fixed >= (min(natural[wrap], 16) if wrap in shown else 0)


def _rule_box() -> Any:
    from rich.box import Box

    # headers underlined with '-' and two spaces between columns, as plain tools print
    return Box("    \n    \n -  \n    \n    \n    \n    \n    \n")


def no_plan_message(plan: Any, what: str = "this request") -> str:
    """One readable line for a plan with no model: the policy, how many models were dropped
    with two reasons (models that do not run this task kind last) and where to see them all."""
    dropped = sorted(plan.dropped, key=lambda d: d.reason.startswith("does not do"))
    seen: dict[str, str] = {}  # one example per distinct reason
    for d in dropped:
        seen.setdefault(d.reason, d.model)
    examples = "; ".join(f"{model}: {reason}" for reason, model in list(seen.items())[:2])
    return (
        f"no model can run {what} under policy {plan.policy!r}"
        + (f" ({plural(len(dropped), 'model')} dropped, e.g. {examples})" if dropped else "")
        + "; 'kierouter explain' with the same options shows why each was dropped"
    )


def exit_code_for(exc: KieRouterError) -> int:
    """The documented exit code for an error (see :data:`EXIT_CODES`)."""
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
