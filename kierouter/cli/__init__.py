"""The ``kierouter`` command line. Each command lives in its own module of this package.

Exit codes: 0 success; 1 the job or batch failed; 2 bad usage, configuration or input;
3 KIE refused the key (401/433); 4 insufficient credits (402); 5 an ambiguous submission needs
reconciling; 6 a job was paid for but its images could not be saved
(``kierouter fetch`` gets them); 130 interrupted; 141 the output pipe was closed (e.g. ``| head``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

#: command name -> module defining ``add_parser(subparsers)``; order is the help order.
COMMANDS: dict[str, str] = {
    "generate": "kierouter.cli.generate",
    "explain": "kierouter.cli.explain",
    "cost": "kierouter.cli.cost",
    "batch": "kierouter.cli.batch",
    "status": "kierouter.cli.status",
    "fetch": "kierouter.cli.fetch",
    "credits": "kierouter.cli.credits",
    "models": "kierouter.cli.models",
    "plugins": "kierouter.cli.plugins",
    "sim": "kierouter.cli.sim",
    "webhook": "kierouter.cli.webhook",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command that is installed."""
    parser = argparse.ArgumentParser(
        prog="kierouter",
        description="Route image jobs across KIE.ai's models.",
        epilog="Try: kierouter generate 'a red fox in snow' --sim",
    )
    from kierouter import __version__

    parser.add_argument("--version", action="version", version=f"kierouter {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log each step to stderr (-vv: also hook calls and HTTP requests)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built yet in this checkout
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    from ._common import exit_code_for, print_error

    parser = build_parser()
    args = parser.parse_args(argv)
    from kierouter._errors import ConfigurationError
    from kierouter._logging import configure

    try:
        configure(args.verbose, args.quiet)
    except ConfigurationError as exc:
        print_error(str(exc))
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``kierouter explain ... | head``): stop quietly, as Unix tools
        # do, and keep Python from complaining again when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        from kierouter._errors import KieRouterError

        if not isinstance(exc, KieRouterError):
            raise
        print_error(str(exc))
        return exit_code_for(exc)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
