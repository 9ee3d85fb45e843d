"""``kierouter plugins``: the installed plugins, what they registered, how long they took to
load, and what failed.

A plugin slower than 100 ms to import and register is flagged: every command and every
``Router()`` pays that time again. With ``-v`` each failure is logged with its traceback; with
``--json`` the tracebacks are in each plugin's ``tracebacks``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import print_json, print_table, registry_from_env


def add_parser(sub: Any) -> None:
    """Add the ``plugins`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "plugins",
        help="list installed plugins",
        description=(
            "List installed plugins: what each registered, its load time (flagged over 100 ms) "
            "and its errors (with tracebacks under -v and in --json)."
        ),
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List plugins as a table or JSON (name, version, models, load time, errors)."""
    from kierouter._registry import SLOW_LOAD_MS

    registry = registry_from_env()
    rows = [
        {
            "name": r.name,
            "version": r.version,
            "source": r.source,
            "models": r.models,
            "policies": r.policies,
            "judges": r.judges,
            "event_sinks": r.event_sinks,
            "load_ms": round(r.load_ms, 1),
            "slow": r.slow,
            "error": "; ".join(r.errors) or None,
            "errors": r.errors,
            "tracebacks": r.tracebacks,
        }
        for r in registry.plugins
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no plugins installed (pip install kierouter-seedream, ...)")
        return 0
    print_table(
        ["plugin", "version", "models", "load", "status"],
        [
            [
                r.name,
                r.version or "-",
                len(r.models),
                f"{r.load_ms:.0f} ms" + (" SLOW" if r.slow else ""),
                "; ".join(r.errors) or "ok",
            ]
            for r in registry.plugins
        ],
    )
    slow = [r.name for r in registry.plugins if r.slow]
    if slow:
        print(
            f"\nSLOW: {', '.join(slow)} took over {SLOW_LOAD_MS:.0f} ms to load, which every "
            "command pays; KIEROUTER_TRACE_PLUGINS=1 kierouter -v plugins shows where it goes."
        )
    if any(r.tracebacks for r in registry.plugins) and not getattr(args, "verbose", 0):
        print("\nkierouter -v plugins shows each failure's traceback.")
    return 0
