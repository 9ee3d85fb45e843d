"""``kierouter credits``: the account's credit balance."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ._common import print_json

__all__ = ["add_client_options", "add_parser", "client_options", "run"]

#: Where ``kierouter sim`` listens by default.
SIM_URL = "http://127.0.0.1:8799"


def add_client_options(p: argparse.ArgumentParser) -> None:
    """Options shared by commands that talk to KIE (or to a running emulator)."""
    p.add_argument("--base-url", help="KIE API base URL (default $KIE_BASE_URL or api.kie.ai)")
    p.add_argument(
        "--sim",
        action="store_true",
        help=f"talk to a running `kierouter sim` (at --base-url, default {SIM_URL}, key sim-key)",
    )


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """KieClient keyword arguments from :func:`add_client_options`."""
    if args.sim:
        return {"base_url": args.base_url or SIM_URL, "api_key": "sim-key"}
    return {"base_url": args.base_url}


def add_parser(sub: Any) -> None:
    """Add the ``credits`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "credits", help="show the account's credit balance", description="Show the credit balance."
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_client_options(p)
    p.set_defaults(func=run)


async def _balance(args: argparse.Namespace) -> float:
    from kierouter._transport import KieClient

    async with KieClient(**client_options(args)) as client:
        return await client.credits()


def run(args: argparse.Namespace) -> int:
    """Print the balance in credits and its rough USD value."""
    from .generate import USD_PER_CREDIT

    balance = asyncio.run(_balance(args))
    if args.json:
        print_json({"credits": balance, "usd": round(balance * USD_PER_CREDIT, 4)})
    else:
        sys.stdout.write(f"{balance:g} credits (≈ ${balance * USD_PER_CREDIT:,.2f})\n")
    return 0
