"""``kierouter worker --db URL``: one more worker for the ``--db`` batches of a database.

It takes rows of any batch in that database (``kierouter batch run FILE --out DIR --db URL``
started them) until interrupted, shares the key's create limit and each batch's budget with
every other worker through PostgreSQL, and recovers the rows of workers that died. Needs
``pip install 'kierouter[scale]'`` (DBOS Transact); see ``docs/scale.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from ._options import add_target, target
from ._parser import positive_int

__all__ = ["add_parser", "run"]


def add_db(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--db postgresql://...``: the batch lives in PostgreSQL (workers share it)."""
    p.add_argument(
        "--db",
        metavar="URL",
        required=required,
        help="PostgreSQL database of the batch, shared by every worker "
        "(postgresql://user@host:5432/db; needs kierouter[scale])",
    )
    p.add_argument(
        "--account",
        action="append",
        metavar="NAME[=KEY_ENV[@URL]]",
        help="with --db: the KIE account whose limits this process shares (default 'default'); "
        "repeat NAME=KEY_ENV (the key in environment variable KEY_ENV) for a pool of accounts: "
        "each create goes to one with room in its create window and credits",
    )


def add_parser(sub: Any) -> None:
    """Add the ``worker`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "worker",
        help="take rows of the --db batches of a database (one more worker)",
        description="Run one more worker for the batches of a PostgreSQL database, on any "
        "machine that reaches it and the batches' output folders, until interrupted.",
    )
    add_db(p, required=True)
    add_target(p)
    p.add_argument(
        "--concurrency", type=positive_int, default=20, metavar="N", help="rows at once (20)"
    )
    p.add_argument(
        "--executor-id",
        metavar="ID",
        help="this worker's id (default: a new one); two live workers never share one",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve the callback front here: callbacks of every batch, for any worker",
    )
    p.add_argument(
        "--callback-url",
        metavar="URL",
        help="where KIE posts callbacks (a worker's --listen, or a balancer before several)",
    )
    p.set_defaults(func=run)


def _check_scale() -> None:
    from ._common import CliError

    try:
        import dbos  # noqa: F401
    except ImportError:
        raise CliError("--db needs DBOS Transact: pip install 'kierouter[scale]'", 2) from None


def accounts_of(values: list[str]) -> tuple[str, tuple[Any, ...]]:
    """``--account`` values: one ``NAME`` (the target's key), or a pool of ``NAME=KEY_ENV``."""
    import os

    from kierouter.scale._pool import parse_account

    from ._common import CliError

    if not values:
        return "default", ()
    if all("=" not in v for v in values):
        if len(values) > 1:
            raise CliError("--account: name one account, or give each as NAME=KEY_ENV", 2)
        return values[0], ()
    if any("=" not in v for v in values):
        raise CliError("--account: a pool names every account as NAME=KEY_ENV", 2)
    try:
        pool = tuple(parse_account(v, os.environ) for v in values)
    except Exception as exc:  # ConfigurationError: names the flag and the variable, not a key
        raise CliError(str(exc), 2) from None
    if len({a.name for a in pool}) != len(pool):
        raise CliError("--account: two accounts of the pool have the same name", 2)
    return pool[0].name, pool


def options_for(args: argparse.Namespace, where: Any) -> Any:
    """The :class:`~kierouter.scale._handle.WorkerOptions` of a command's arguments."""
    from kierouter.scale._handle import WorkerOptions
    from kierouter.scale._worker import new_executor_id

    account, pool = accounts_of(getattr(args, "account", None) or [])
    return WorkerOptions(
        url=args.db,
        executor_id=getattr(args, "executor_id", None) or new_executor_id(),
        base_url=where.base_url if where.kind == "url" else None,
        api_key=where.api_key,
        account=account,
        pool=pool,
        concurrency=getattr(args, "concurrency", None) or 20,
        listen=getattr(args, "listen", None),
        callback_url=getattr(args, "callback_url", None) or getattr(args, "public_url", None),
    )


async def _serve(options: Any) -> None:
    from kierouter.scale._worker import Worker

    worker = Worker(options)
    await worker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(f"worker {options.executor_id} ready\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await worker.aclose()
        sys.stdout.write(
            f"worker {options.executor_id} stopped: {worker.forwarded} callbacks forwarded to "
            f"other workers, {worker.delivered} delivered here from others\n"
        )
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """Serve as a worker until SIGINT/SIGTERM."""
    from ._common import CliError

    _check_scale()
    where = target(args)
    if where.kind == "sim":
        raise CliError("a worker needs an emulator every worker reaches: use --sim-url URL", 2)
    asyncio.run(_serve(options_for(args, where)))
    return 0
