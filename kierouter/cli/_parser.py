"""The CLI's argument parser: nearest-match suggestions, ``-v``/``-q`` after any command, and
number types that refuse NaN and infinity.

argparse gained ``suggest_on_error`` only in Python 3.14; :class:`CommandParser` does the same
on 3.11 for mistyped commands, choices and options, and keeps each usage error to one line
(plus where to read more) instead of the whole usage block.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

__all__ = [
    "CommandParser",
    "finite",
    "nearest",
    "non_negative",
    "non_negative_int",
    "port",
    "positive",
    "positive_int",
]


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` most likely meant: a close spelling, else the one it starts."""
    options = list(dict.fromkeys(candidates))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return close[0]
    started = [c for c in options if word and c.startswith(word)]
    return started[0] if len(started) == 1 else None


def _hint(word: str, candidates: Iterable[str]) -> str:
    guess = nearest(word, candidates)
    return f"; did you mean {guess!r}?" if guess else ""


class CommandParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` for kierouter's commands.

    Every parser but the top one accepts ``-v``/``--verbose`` and ``-q``/``--quiet`` (stored as
    ``verbose_after``/``quiet_after`` and added to the top-level flags, so ``kierouter -v
    plugins`` and ``kierouter plugins -v`` mean the same). Usage errors name the nearest valid
    command, choice or option.
    """

    def __init__(self, *args: Any, logging_flags: bool = True, **kwargs: Any) -> None:
        # no prefixes: "--sim" must not quietly mean "--sim-url" where a command has only that
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        if logging_flags:
            group = self.add_argument_group("output")
            # SUPPRESS: an absent flag must not reset what the top-level parser already read
            group.add_argument(
                "-v",
                "--verbose",
                dest="verbose_after",
                action="count",
                default=argparse.SUPPRESS,
                help="log each step to stderr (-vv: also HTTP requests)",
            )
            group.add_argument(
                "-q",
                "--quiet",
                dest="quiet_after",
                action="store_true",
                default=argparse.SUPPRESS,
                help="no progress, errors only",
            )

    def error(self, message: str) -> NoReturn:
        """Print one line saying what is wrong and where to read more; exit 2."""
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        if isinstance(action, argparse._SubParsersAction):
            raise argparse.ArgumentError(None, f"unknown command {value!r}{_hint(value, names)}")
        raise argparse.ArgumentError(
            action,
            f"invalid choice {value!r}{_hint(str(value), names)} (choose from {', '.join(names)})",
        )

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Parse ``args``; an unknown option is reported by the command it was given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._deepest(parsed)
            parser.error(parser._unrecognized(extras))
        return parsed

    def _deepest(self, parsed: argparse.Namespace) -> CommandParser:
        """The innermost (sub)command parser the arguments reached."""
        parser = self
        while True:
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
                    if isinstance(chosen, CommandParser):
                        parser = chosen
                        break
            else:
                return parser

    def _unrecognized(self, extras: Sequence[str]) -> str:
        flags = [word for word in extras if word.startswith("-") and not _is_number(word)]
        if not flags:
            return f"unexpected argument {extras[0]!r}"
        flag = flags[0].split("=", 1)[0]
        known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        return f"unknown option {flag}{_hint(flag, known)}"


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


# -- number types ------------------------------------------------------------------------------
# argparse prefixes each message with "argument --OPTION:", so every error names its option.


def finite(text: str) -> float:
    """A float that is a real number (``nan`` turned a budget off, ``inf`` hung a run)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bounded(check: Callable[[float], bool], what: str, convert: Callable[[str], Any]) -> Any:
    def parse(text: str) -> Any:
        value = convert(text)
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


positive: Callable[[str], float] = _bounded(lambda v: v > 0, "a number above 0", finite)
non_negative: Callable[[str], float] = _bounded(lambda v: v >= 0, "a number >= 0", finite)
positive_int: Callable[[str], int] = _bounded(lambda v: v >= 1, "a whole number >= 1", _integer)
non_negative_int: Callable[[str], int] = _bounded(lambda v: v >= 0, "a whole number >= 0", _integer)
port: Callable[[str], int] = _bounded(lambda v: 0 <= v <= 65535, "a port, 0-65535", _integer)
