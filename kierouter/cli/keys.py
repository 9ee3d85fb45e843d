"""``kierouter keys set|get|remove|path``: keep the KIE key (and webhook secrets) on this machine.

Keys live in ``keys.json`` in the user's config folder (or ``$KIEROUTER_HOME``), readable by the
user alone (0600). The environment always wins: ``KIE_API_KEY`` set and non-empty is used
instead of a stored ``kie`` key. ``set`` reads the value from a hidden prompt or from stdin,
never from the command line (other users of the machine can read command lines); ``get``
prints a masked form unless ``--reveal``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import CliError, print_json

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Add the ``keys`` command."""
    from kierouter._keys import KEY_NAMES

    p: argparse.ArgumentParser = sub.add_parser(
        "keys",
        help="store the KIE key and webhook secrets for kierouter to use",
        description="Store secrets in the user's config folder (0600). Names: "
        + ", ".join(f"{name} (stands in for ${var})" for name, var in KEY_NAMES.items())
        + ". The environment variable wins when it is set.",
    )
    commands = p.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))
    names = tuple(KEY_NAMES)

    store = commands.add_parser("set", help="store a key, read from a hidden prompt or from stdin")
    store.add_argument("name", nargs="?", default="kie", choices=names, help="which key (kie)")
    store.set_defaults(func=_set)

    get = commands.add_parser("get", help="show a key, masked, and where it comes from")
    get.add_argument("name", nargs="?", default="kie", choices=names, help="which key (kie)")
    get.add_argument("--reveal", action="store_true", help="print the whole key")
    get.add_argument("--json", action="store_true", help="print JSON")
    get.set_defaults(func=_get)

    remove = commands.add_parser("remove", help="forget a stored key")
    remove.add_argument("name", nargs="?", default="kie", choices=names, help="which key (kie)")
    remove.set_defaults(func=_remove)

    path = commands.add_parser("path", help="print the file keys are stored in")
    path.set_defaults(func=_path)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _set(args: argparse.Namespace) -> int:
    from kierouter._keys import KEY_NAMES, store_key

    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{args.name} key (input hidden): ")
    else:
        value = sys.stdin.readline()
    if not value.strip():
        raise CliError(f"no {args.name} key given; nothing stored")
    path = store_key(args.name, value)
    sys.stderr.write(f"stored the {args.name} key in {path}\n")
    variable = KEY_NAMES[args.name]
    if os.environ.get(variable, "").strip():
        sys.stderr.write(f"note: ${variable} is set and wins over the stored key\n")
    return 0


def _get(args: argparse.Namespace) -> int:
    from kierouter._keys import KEY_NAMES, keys_path, load_keys, mask

    variable = KEY_NAMES[args.name]
    from_env = os.environ.get(variable, "").strip()
    value = from_env or load_keys().get(args.name)
    source = f"${variable}" if from_env else str(keys_path()) if value else None
    if value is None:
        if args.json:
            print_json({"name": args.name, "set": False, "source": None, "value": None})
            return 1
        raise CliError(
            f"no {args.name} key: set ${variable} or run 'kierouter keys set {args.name}'", 1
        )
    shown = value if args.reveal else mask(value)
    if args.json:
        print_json({"name": args.name, "set": True, "source": source, "value": shown})
    else:
        sys.stdout.write(f"{shown}\n")
        sys.stderr.write(f"(from {source})\n")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from kierouter._keys import keys_path, remove_key

    if not remove_key(args.name):
        raise CliError(f"no {args.name} key is stored in {keys_path()}", 1)
    sys.stderr.write(f"removed the {args.name} key from {keys_path()}\n")
    return 0


def _path(args: argparse.Namespace) -> int:
    from kierouter._keys import keys_path

    sys.stdout.write(f"{keys_path()}\n")
    return 0
