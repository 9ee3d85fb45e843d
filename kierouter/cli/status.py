"""``kierouter status TASK_ID --model M``: one task's status (and, optionally, its images)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from ._common import plural, print_json
from ._options import Target, add_config, add_json, add_target, target
from .credits import kie_client

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``status`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "status",
        help="show a task's status by id",
        description="Read one task's status (one status call); --download fetches its images.",
    )
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument(
        "--model", required=True, metavar="ID", help="the model id the task was created on"
    )
    p.add_argument("--download", metavar="DIR", help="wait for the task and download its images")
    add_target(p, base_url=True)
    add_config(p)
    add_json(p, "the status")
    p.set_defaults(func=run)


async def _status(args: argparse.Namespace, where: Target) -> tuple[Any, list[Any]]:
    from kierouter._config import load_config
    from kierouter._router import Router

    config = load_config(args.config)
    async with (
        kie_client(where) as options,
        Router(
            allow_private_downloads=where.local,
            latency_scale=1.0 / where.time_scale,
            config=config,
            poll=config.polling.to_poll_config(),
            **options,
        ) as router,
    ):
        handle = router.task(args.task_id, model=args.model)
        if args.download:
            files = await handle.download(args.download)
            return await handle.status(), list(files)
        return await handle.status(), []


def run(args: argparse.Namespace) -> int:
    """Print the task's state, URLs and failure, if any."""
    status, files = asyncio.run(_status(args, target(args)))
    if args.json:
        data = msgspec.to_builtins(status)
        data["files"] = [msgspec.to_builtins(f) for f in files]
        print_json(data)
    else:
        out = sys.stdout
        out.write(f"{status.task_id}: {status.state} ({status.raw_state})\n")
        if status.fail_code or status.fail_message:
            out.write(f"  failed: {status.fail_code} {status.fail_message or ''}\n")
        for url in status.urls:
            out.write(f"  {url}\n")
        for file in files:
            out.write(f"  saved {file.path} ({plural(file.size, 'byte')})\n")
    return 0 if status.state != "failed" else 1
