"""``kierouter sim``: run the KIE emulator on a port until stopped.

Prints its base URL and API key on one line each, then serves until SIGINT or SIGTERM::

    $ kierouter sim --port 8799 --time-scale 10
    http://127.0.0.1:8799
    sim-key
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._parser import non_negative, port, positive, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``sim`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "sim",
        help="run the KIE emulator (a local api.kie.ai)",
        description="Run the KIE emulator on a local port until interrupted. "
        "Prints the base URL and the API key it accepts.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8799, help="port (default 8799; 0 = any free)")
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario TOML: settings, model behaviour, faults, Market models it does not ship "
        "(docs/emulator.md)",
    )
    p.add_argument(
        "--time-scale",
        type=positive,
        metavar="X",
        help="emulated seconds per real second (default 1, or the scenario's)",
    )
    p.add_argument("--hmac-key", help="sign callbacks with this webhook HMAC key")
    p.add_argument("--credits", type=non_negative, help="starting balance (default 100000)")
    p.add_argument(
        "--create-limit", type=positive_int, help="creates per window per key (default 20)"
    )
    p.add_argument("--create-window", type=positive, help="create window, seconds (default 10)")
    p.add_argument(
        "--read-limit", type=positive, help="status reads per second (default: no limit)"
    )
    p.add_argument("--api-key", help="the key to accept (default sim-key)")
    p.add_argument("--seed", type=int, help="seed for task ids, outcomes and faults")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the emulator until SIGINT/SIGTERM."""
    from kierouter._server import EMULATOR_LIMITS, Server, serve_forever
    from kierouter.sim import Emulator

    options: dict[str, Any] = {}
    for name in (
        "time_scale",
        "hmac_key",
        "credits",
        "create_limit",
        "create_window",
        "read_limit",
        "api_key",
        "seed",
    ):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    emulator = Emulator(host=args.host, port=args.port, scenario=args.scenario, **options)

    def ready(server: Server) -> None:
        emulator.state.base_url = server.url
        sys.stdout.write(f"{server.url}\n{emulator.api_key}\n")
        sys.stdout.flush()

    try:
        serve_forever(emulator.app, args.host, args.port, limits=EMULATOR_LIMITS, on_ready=ready)
    except OSError as exc:
        sys.stderr.write(f"kierouter: error: cannot serve on {args.host}:{args.port}: {exc}\n")
        return 2
    return 0
