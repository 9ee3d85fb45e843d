"""``kierouter logs``: what was generated, when, by which model, for how many credits.

Every ``generate`` and batch job is recorded (``--no-log`` leaves a run out; a library
``Router(log=True)`` records too) in ``logs.db`` under the user's data folder, or
``$KIEROUTER_HOME``. ``kierouter logs`` lists the latest jobs, ``--cost`` sums the credits by
day and model; jobs run against an emulator are listed but left out of the sums unless
``--include-sim``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any

from ._common import CliError, plural, print_json, print_table
from ._options import add_json
from ._parser import positive_int

__all__ = ["add_parser", "parse_since", "record_batch", "run"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhdw])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_parser(sub: Any) -> None:
    """Add the ``logs`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "logs",
        help="the jobs run so far and what they cost",
        description="List the latest recorded jobs (generate, batch, Router(log=True)), or sum "
        "their credits by day and model with --cost.",
    )
    p.add_argument(
        "-n", "--count", type=positive_int, default=20, metavar="N", help="show N jobs (20)"
    )
    p.add_argument("--model", metavar="ID", help="only jobs served by this model or family")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="only jobs since WHEN: a date (2026-05-01), a date and time, or an age (90m, 12h, 7d)",
    )
    p.add_argument("--cost", action="store_true", help="sum credits by day and model")
    p.add_argument(
        "--include-sim", action="store_true", help="count emulator jobs in --cost's sums"
    )
    p.add_argument("--path", action="store_true", help="print the log database's path")
    add_json(p, "the jobs (or the sums)")
    p.set_defaults(func=run)


def parse_since(text: str, now: float | None = None) -> float:
    """A Unix time from ``2026-05-01``, ``2026-05-01T14:00`` (local time) or an age (``12h``)."""
    now = time.time() if now is None else now
    ago = _AGO.match(text.strip())
    if ago:
        return now - float(ago.group(1)) * _UNIT[ago.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"argument --since: {text!r} is not a date (2026-05-01), a date and time "
            "(2026-05-01T14:00) or an age (90m, 12h, 7d, 2w)"
        ) from None
    return when.timestamp()  # naive: local time, as the listing prints it


def _local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def run(args: argparse.Namespace) -> int:
    """List the latest jobs or the spend."""
    from kierouter._history import History

    history = History()
    if args.path:
        sys.stdout.write(f"{history.path}\n")
        return 0
    since = parse_since(args.since) if args.since else None
    if args.cost:
        return _cost(history, args, since)
    entries = history.entries(limit=args.count, model=args.model, since=since)
    if args.json:
        print_json([{**e.__dict__, "ended": _local(e.ended_at)} for e in entries])
        return 0
    if not entries:
        if args.model or since is not None:
            sys.stdout.write("no recorded job matches --model/--since\n")
        else:
            sys.stdout.write(f"no jobs recorded yet ({history.path})\n")
        return 0
    print_table(
        ["time", "model", "credits", "files", "prompt"],
        [
            [
                _local(e.ended_at),
                (e.served_model or "failed") + (" (sim)" if e.emulated else ""),
                f"{e.credits:g}",
                len(e.files),
                e.prompt or f"({e.task})",
            ]
            for e in reversed(entries)  # oldest first, the latest just above the prompt
        ],
        optional=("files", "time"),
    )
    return 0


def _cost(history: Any, args: argparse.Namespace, since: float | None) -> int:
    from kierouter.policy import USD_PER_CREDIT

    sums = history.spend(model=args.model, since=since, emulated=args.include_sim)
    total = sum(s["credits"] for s in sums)
    if args.json:
        print_json(
            {
                "days": [{**s, "usd": s["credits"] * USD_PER_CREDIT} for s in sums],
                "credits": total,
                "usd": total * USD_PER_CREDIT,
            }
        )
        return 0
    if sums:
        print_table(
            ["day", "model", "jobs", "credits", "usd"],
            [
                [s["day"], s["model"], s["jobs"], f"{s['credits']:g}", f"{usd:.2f}"]
                for s in sums
                for usd in [s["credits"] * USD_PER_CREDIT]
            ],
        )
    jobs = sum(s["jobs"] for s in sums)
    sys.stdout.write(
        f"total: {plural(total, 'credit')} (≈ ${total * USD_PER_CREDIT:.2f}) "
        f"over {plural(jobs, 'job')}\n"
    )
    skipped = 0 if args.include_sim else history.count_emulated(model=args.model, since=since)
    if skipped:
        sys.stdout.write(f"({plural(skipped, 'emulator job')} not counted: add --include-sim)\n")
    return 0


def record_batch(folder: Path) -> None:
    """Record the finished jobs of the batch in ``folder`` (again after a resume: updated)."""
    from kierouter._history import History, LogEntry
    from kierouter.batch import JOURNAL_FILE
    from kierouter.journal import SqliteJournal

    path = folder / JOURNAL_FILE
    if not path.exists():
        return
    backend = SqliteJournal(path)
    try:
        settings = (backend.get_meta("batch") or {}).get("settings") or {}
        attempts: dict[str, list[dict[str, Any]]] = {}
        for a in backend.attempts():
            if a.phase == "ended" and a.outcome not in (None, "skipped"):
                attempts.setdefault(a.job_key, []).append(
                    {
                        "model": a.model,
                        "outcome": a.outcome,
                        "reason": a.reason,
                        "credits": a.credits,
                        "task_id": a.task_id,
                    }
                )
        entries = [
            LogEntry(
                ended_at=job.updated_at or time.time(),
                source="batch",
                batch=str(folder),
                job_key=job.key,
                prompt=str(job.spec.get("request", {}).get("prompt", "")),
                task=str(job.spec.get("step", "generate")),
                policy=job.spec.get("policy") or settings.get("policy"),
                served_model=job.result.served_model if job.result else None,
                ok=job.state == "downloaded",
                error=job.error,
                attempts=attempts.get(job.key, []),
                credits=job.credits,
                files=[f.path for f in job.files],
                task_ids=[t["task_id"] for t in attempts.get(job.key, []) if t["task_id"]],
                emulated=bool(settings.get("sim") or settings.get("loopback")),
            )
            for job in backend.jobs(["downloaded", "failed"])
        ]
    finally:
        backend.close()
    import asyncio

    asyncio.run(History().record(entries))
