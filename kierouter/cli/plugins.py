"""``kierouter plugins``: the installed plugins, what they registered, and what failed."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import print_json, print_table, registry_from_env


def add_parser(sub: Any) -> None:
    """Add the ``plugins`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "plugins", help="list installed plugins", description="List installed plugins."
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List plugins as a table or JSON (name, version, models, error)."""
    registry = registry_from_env()
    rows = [
        {
            "name": r.name,
            "version": r.version,
            "models": r.models,
            "policies": r.policies,
            "judges": r.judges,
            "event_sinks": r.event_sinks,
            "error": "; ".join(r.errors) or None,
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
        ["plugin", "version", "models", "status"],
        [[r["name"], r["version"] or "-", len(r["models"]), r["error"] or "ok"] for r in rows],
    )
    return 0
