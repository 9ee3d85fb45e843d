"""Logging for the command line: one handler on stderr, quiet libraries unless asked.

The library never configures logging (an application owns its handlers); the CLI calls
:func:`configure` once. Levels: ``-q`` errors only; default warnings (a plugin's error in one
line); ``-v`` info (every job's steps, refused callbacks, plugin errors with their traceback,
and with ``KIEROUTER_TRACE_PLUGINS`` every plugin import and hook call with its duration);
``-vv`` debug (every hook call, every HTTP request). ``KIEROUTER_LOG=debug|info|warning|error``
sets the level when no flag does. stamina's retry events show from ``-v`` on; httpx's and
uvicorn's request lines only with ``-vv``: by default a retried read prints nothing.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["LEVELS", "configure", "level_for"]

#: ``KIEROUTER_LOG`` values and the levels they stand for.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
#: Third-party loggers and the most verbose level at which each still shows.
_LIBRARIES = {
    "stamina": logging.INFO,
    "httpx": logging.DEBUG,
    "httpcore": logging.DEBUG,
    "uvicorn": logging.DEBUG,
    "uvicorn.error": logging.DEBUG,
    "uvicorn.access": logging.DEBUG,
}
_HANDLER_NAME = "kierouter-cli"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (a test may swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def level_for(verbose: int = 0, quiet: bool = False, env: str | None = None) -> int:
    """The level for ``-v`` given ``verbose`` times, ``-q``, or ``KIEROUTER_LOG``'s value."""
    if quiet:
        return logging.ERROR
    if verbose >= 2:
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    if env:
        level = LEVELS.get(env.strip().lower())
        if level is None:
            from ._errors import ConfigurationError

            raise ConfigurationError(
                f"KIEROUTER_LOG={env!r} is not a level; use one of {', '.join(LEVELS)}"
            )
        return level
    return logging.WARNING


def configure(verbose: int = 0, quiet: bool = False) -> int:
    """Send kierouter's log records to stderr at the level the flags ask for; return it.

    Calling it again replaces the handler it installed (tests run many CLI commands in one
    process).
    """
    level = level_for(verbose, quiet, os.environ.get("KIEROUTER_LOG"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    fmt = "%(levelname)s %(name)s: %(message)s" if level <= logging.INFO else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)  # kierouter's own loggers inherit it
    for name, shows_from in _LIBRARIES.items():
        logging.getLogger(name).setLevel(level if level <= shows_from else logging.ERROR)
    return level
