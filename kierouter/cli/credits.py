"""``kierouter credits``: the account's credit balance."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from ._common import print_json
from ._options import Target, add_json, add_target, target

__all__ = ["add_parser", "kie_client", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``credits`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "credits", help="show the account's credit balance", description="Show the credit balance."
    )
    add_target(p, base_url=True)
    add_json(p, "the balance")
    p.set_defaults(func=run)


@contextlib.asynccontextmanager
async def kie_client(where: Target) -> AsyncIterator[dict[str, Any]]:
    """Client keywords (``base_url``, ``api_key``) for ``where``, starting an emulator for
    ``--sim`` for as long as the block runs."""
    if where.kind != "sim":
        yield {"base_url": where.base_url, "api_key": where.api_key}
        return
    from kierouter.sim import Emulator

    async with Emulator(time_scale=where.time_scale) as emu:
        yield {"base_url": emu.base_url, "api_key": emu.api_key}


async def _balance(where: Target) -> float:
    from kierouter._transport import KieClient

    async with kie_client(where) as options, KieClient(**options) as client:
        return await client.credits()


def run(args: argparse.Namespace) -> int:
    """Print the balance in credits and its rough USD value."""
    from .generate import USD_PER_CREDIT

    balance = asyncio.run(_balance(target(args)))
    if args.json:
        print_json({"credits": balance, "usd": round(balance * USD_PER_CREDIT, 4)})
    else:
        sys.stdout.write(f"{balance:g} credits (≈ ${balance * USD_PER_CREDIT:,.2f})\n")
    return 0
