"""The ``kierouter`` command line. Each command lives in its own module of this package.

Exit codes (:data:`~kierouter.cli._common.EXIT_CODES`, printed in docs/cli.md): 0 success;
1 the job or batch failed; 2 bad usage, configuration or input; 3 KIE refused the key
(401/433) or none is set; 4 insufficient credits (402); 5 an ambiguous submission needs
reconciling; 6 a job was paid for but its images could not be saved (``kierouter fetch`` gets
them); 130 interrupted; 141 the output pipe was closed (e.g. ``| head``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ._parser import CommandParser

__all__ = ["COMMANDS", "build_parser", "main"]

#: command name -> module defining ``add_parser(subparsers)``; order is the help order.
COMMANDS: dict[str, str] = {
    "generate": "kierouter.cli.generate",
    "explain": "kierouter.cli.explain",
    "cost": "kierouter.cli.cost",
    "upload": "kierouter.cli.upload",
    "batch": "kierouter.cli.batch",
    "status": "kierouter.cli.status",
    "fetch": "kierouter.cli.fetch",
    "credits": "kierouter.cli.credits",
    "logs": "kierouter.cli.logs",
    "keys": "kierouter.cli.keys",
    "models": "kierouter.cli.models",
    "plugins": "kierouter.cli.plugins",
    "sim": "kierouter.cli.sim",
    "webhook": "kierouter.cli.webhook",
    "worker": "kierouter.cli.worker",
}


def build_parser() -> CommandParser:
    """The full argument parser, with every command that is installed."""
    parser = CommandParser(
        prog="kierouter",
        description="Route image jobs across KIE.ai's models.",
        epilog="Try: kierouter generate 'a red fox in snow' --sim",
        logging_flags=False,
    )
    from kierouter import __version__

    parser.add_argument("--version", action="version", version=f"kierouter {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log each step to stderr (-vv: also hook calls and HTTP requests); "
        "also accepted after the command",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress, errors only (also accepted after the command)",
    )
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
    from ._common import CliError, exit_code_for, print_error

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help / --version (0)
        return exc.code if isinstance(exc.code, int) else 0
    from kierouter._errors import ConfigurationError, KieRouterError
    from kierouter._logging import configure

    args.verbose += getattr(args, "verbose_after", 0)
    args.quiet = args.quiet or getattr(args, "quiet_after", False)
    try:
        configure(args.verbose, args.quiet)
    except ConfigurationError as exc:
        print_error(str(exc))
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from kierouter._keys import export_stored_keys

        if args.command != "keys":  # `keys` tells a stored key from the environment's
            export_stored_keys()  # a stored key stands in for an unset environment variable
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
    except CliError as exc:
        print_error(str(exc))
        return exc.code
    except OSError as exc:
        import errno

        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            raise
        # the callback listener (--listen, or [webhook] listen) could not bind: nothing was sent
        where = getattr(args, "listen", None) or "the [webhook] listen address"
        print_error(f"cannot listen on {where} for callbacks: {exc.strerror}; choose another")
        return 2
    except KieRouterError as exc:
        print_error(str(exc))
        return exit_code_for(exc)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
