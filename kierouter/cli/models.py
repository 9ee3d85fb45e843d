"""``kierouter models``: every registered model card."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from ._common import print_json, print_table, registry_from_env


def add_parser(sub: Any) -> None:
    """Add the ``models`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "models", help="list models and their cards", description="List registered models."
    )
    p.add_argument("--json", action="store_true", help="print a JSON array of the model cards")
    p.add_argument("--family", help="only models of this family")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List model cards as a table or JSON."""
    registry = registry_from_env()
    cards = sorted(registry.cards.values(), key=lambda c: (c.family, c.pricing.credits, c.id))
    if args.family:
        families = {c.family for c in cards}
        if args.family not in families:
            from ._common import CliError
            from ._parser import nearest

            guess = nearest(args.family, families)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise CliError(
                f"no family {args.family!r}{hint} (families: {', '.join(sorted(families))})"
            )
        cards = [c for c in cards if c.family == args.family]
    if args.json:
        print_json([msgspec.to_builtins(c) for c in cards])
        return 0
    print_table(
        ["model", "family", "tasks", "credits", "p50 s", "quality", "strengths"],
        [
            [
                c.id,
                c.family,
                ",".join(c.task_kinds),
                f"{c.pricing.credits:g}",
                f"{c.latency_p50:g}",
                f"{c.quality:g}",
                ", ".join(c.strengths),
            ]
            for c in cards
        ],
        optional=("quality", "p50 s", "tasks", "family"),
    )
    return 0
