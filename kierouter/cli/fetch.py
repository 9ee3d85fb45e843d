"""``kierouter fetch``: save images KIE made and billed but that could not be saved.

``fetch DIR`` downloads again every ``undelivered`` job of the batch in ``DIR`` (``--job KEY``:
one job) and moves it to ``downloaded``; ``fetch TASK_ID --model M --out DIR`` saves one task's
images. Nothing is ever created: the images come from the task KIE already made, through its
result links (re-minted by KIE's download-url when they expired). When KIE's links cannot be
renewed any more, it says so.

Exit codes: 0 everything asked for is saved; 6 something is still not saved (paid, its URLs
kept: try again later, or the links have expired); 1 the task failed; 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ._common import print_error, print_json
from ._options import add_json, add_target, require_key, target
from .credits import kie_client

__all__ = ["add_parser", "run"]

#: KIE made and billed the images, but they are not saved (the PaidUndeliveredError code)
UNDELIVERED = 6


def add_parser(sub: Any) -> None:
    """Add the ``fetch`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "fetch",
        help="save paid images that could not be saved (a batch folder, or a task id)",
        description="Download again images KIE made and billed but that could not be saved: "
        "every undelivered job of a batch folder, or one task by id. Nothing is created.",
    )
    p.add_argument("target", metavar="DIR|TASK_ID", help="a batch output folder, or a task id")
    p.add_argument("--job", metavar="KEY", help="with DIR: only this job (e.g. row-3-generate)")
    p.add_argument("--model", help="with TASK_ID: the model id the task was created on")
    p.add_argument("--out", metavar="DIR", help="with TASK_ID: where to save (default: .)")
    add_target(p, base_url=True)
    add_json(p, "what was saved and what was not")
    p.set_defaults(func=run)


def _is_batch(target: str) -> bool:
    return os.path.isdir(target)


async def _fetch_batch(args: argparse.Namespace) -> Any:
    from kierouter.batch import fetch_batch

    overrides: dict[str, Any] = {}
    api_key = None
    if args.sim_url:  # the emulator the batch ran against, at another address
        where = target(args)
        overrides = {"base_url": where.base_url, "sim": False, "loopback": True}
        api_key = where.api_key
    elif args.base_url:
        overrides = {"base_url": args.base_url.rstrip("/"), "sim": False, "loopback": False}
        api_key = require_key()
    elif _stored_loopback(args.target):
        api_key = os.environ.get("KIE_SIM_API_KEY") or "sim-key"
    return await fetch_batch(args.target, job_key=args.job, api_key=api_key, **overrides)


def _stored_loopback(folder: str) -> bool:
    from kierouter.batch import BatchSettings
    from kierouter.journal import SqliteJournal

    path = os.path.join(folder, "journal.sqlite")
    if not os.path.exists(path):
        return False
    backend = SqliteJournal(path)
    try:
        return BatchSettings.stored(backend.get_meta("batch") or {}).loopback
    finally:
        backend.close()


def _batch(args: argparse.Namespace) -> int:
    report = asyncio.run(_fetch_batch(args))
    if args.json:
        print_json({**_builtins(report), "complete": report.complete})
    else:
        out = sys.stdout
        for job in report.fetched:
            out.write(
                f"saved {job['job_key']} (task {job['task_id']}): {', '.join(job['files'])}\n"
            )
        for job in report.undelivered:
            expired = " KIE's links have expired;" if job["expired"] else ""
            out.write(
                f"not saved {job['job_key']} (task {job['task_id']}, {job['credits']:g} credits):"
                f"{expired} {job['reason']}\n"
            )
        if not report.fetched and not report.undelivered:
            out.write(f"{report.out_dir}: nothing to fetch\n")
        out.write(f"manifest: {report.manifest}\n")
    return 0 if report.complete else UNDELIVERED


def _builtins(value: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(value)


async def _fetch_task(args: argparse.Namespace, out: Path) -> list[Any]:
    from kierouter._router import Router

    where = target(args)
    async with (
        kie_client(where) as options,
        Router(allow_private_downloads=where.local, **options) as router,
    ):
        return list(await router.task(args.target, model=args.model).download(out))


def _task(args: argparse.Namespace) -> int:
    from kierouter._errors import DownloadError

    if not args.model:
        print_error(f"{args.target} is not a batch folder; fetching a task by id needs --model")
        return 2
    try:
        files = asyncio.run(_fetch_task(args, Path(args.out or ".").resolve()))
    except DownloadError as exc:
        if args.json:
            print_json(
                {"task_id": args.target, "model": args.model, "files": [], "error": str(exc),
                 "expired": exc.expired}
            )  # fmt: skip
        print_error(str(exc))
        return UNDELIVERED
    if args.json:
        print_json({"task_id": args.target, "model": args.model, "files": _builtins(files)})
    else:
        for file in files:
            sys.stdout.write(f"saved {file.path} ({file.size} bytes)\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """Fetch a batch folder's undelivered jobs, or one task's images."""
    if _is_batch(args.target):
        if args.model or args.out or args.sim:
            print_error("--model, --out and --sim are for a task id; a batch folder keeps its own")
            return 2
        return _batch(args)
    if args.job:
        print_error(f"--job needs a batch folder; {args.target} is not a folder")
        return 2
    return _task(args)
