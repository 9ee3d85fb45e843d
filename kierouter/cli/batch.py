"""``kierouter batch plan|run|resume|status``: price, run, resume and inspect batches.

``plan FILE`` prices a batch with no network call. ``run FILE --out DIR`` journals every job in
``DIR/journal.sqlite``, paces creates to KIE's limit, downloads each image at once and writes
``DIR/manifest.jsonl``; ``resume DIR`` continues after any interruption; ``status DIR`` reports.

Exit codes (as in :mod:`kierouter.cli`): 0 every job downloaded; 1 the batch stopped short
(budget reached, failed rows); 2 bad input or the plan exceeds ``--budget`` (nothing started);
3/4 KIE refused the key (or none is set) / the account ran dry; 5 creates whose answer was lost
are ``unknown`` (resume later: their callback reconciles them); 130 interrupted, with the exact
``kierouter batch resume DIR`` to continue.

``--model`` and ``--max-credits`` restrict every policy a row can name (through the
configuration's ``[policies]``); they are kept in ``DIR/.kierouter-options.json`` so that
``resume`` applies them too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._batch_settings import restricted, run_options, settings_for, store_restriction, where_for
from ._common import plural, print_error, print_json, print_table
from ._options import (
    SIM_KEY,
    Target,
    add_config,
    add_json,
    add_no_log,
    add_policy,
    add_target,
    check_out_dir,
    target,
)
from ._parser import non_negative, positive, positive_int
from ._progress import BatchProgress, duration, progress_mode
from .logs import record_batch

if TYPE_CHECKING:
    from kierouter.batch import BatchPlan, BatchReport

__all__ = ["add_parser", "run"]


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--create-rate",
        type=positive_int,
        metavar="N",
        help="at most N new tasks per --create-window (KIE: 20; default 20)",
    )
    p.add_argument(
        "--create-window",
        type=positive,
        metavar="S",
        help="the create window in seconds (KIE: 10; default 10)",
    )


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--concurrency", type=positive_int, metavar="N", help="rows in progress at once (100)"
    )
    p.add_argument("--budget", type=non_negative, metavar="CREDITS", help="most credits to spend")
    add_target(p)
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="with --sim: an emulator scenario TOML (faults, model behaviour, Market models)",
    )
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="receive KIE's callbacks here (with --public-url)"
    )
    p.add_argument("--public-url", metavar="URL", help="where KIE reaches --listen")
    add_config(p)
    add_json(p, "the report")
    add_no_log(p)
    p.add_argument(
        "--progress-interval",
        type=positive,
        default=None,
        metavar="S",
        help="seconds between progress updates (default 0.5 on a terminal, 5 otherwise)",
    )


def add_parser(sub: Any) -> None:
    """Add the ``batch`` command and its subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="price, run, resume and inspect batches of prompts",
        description="Batch runs: a file of prompts (text, JSONL or CSV) priced before spending, "
        "run under KIE's rate limit with a durable journal, resumable after any interruption.",
    )
    bsub = p.add_subparsers(dest="batch_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))
    policy_help = "policy of rows that name none (default: [batch] policy, else auto)"

    plan = bsub.add_parser("plan", help="price a batch (no network call)")
    plan.add_argument("file", help="prompts: .txt (one a line), .jsonl or .csv")
    add_policy(plan, policy_help=policy_help)
    plan.add_argument("--format", choices=("text", "jsonl", "csv"), help="override detection")
    plan.add_argument(
        "--budget", type=non_negative, metavar="CREDITS", help="check the plan against it"
    )
    add_config(plan)
    _limits(plan)
    add_json(plan, "the plan")
    plan.set_defaults(func=_plan)

    go = bsub.add_parser("run", help="run a batch into an output folder")
    go.add_argument("file", help="prompts: .txt (one a line), .jsonl or .csv")
    go.add_argument(
        "--out",
        metavar="DIR",
        help="output folder, holds the journal (default: [batch] out_dir of the configuration)",
    )
    add_policy(go, policy_help=policy_help)
    go.add_argument("--format", choices=("text", "jsonl", "csv"), help="override detection")
    _limits(go)
    _target(go)
    _add_db(go)
    go.set_defaults(func=_run)

    resume = bsub.add_parser("resume", help="continue a batch after any interruption")
    resume.add_argument("dir", help="the batch's output folder")
    add_policy(resume, policy_help="replace the batch's policy for the rows not done")
    _limits(resume)
    _target(resume)
    resume.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="create again the tasks whose create answer was lost (may pay twice)",
    )
    _add_db(resume)
    resume.set_defaults(func=_resume)

    status = bsub.add_parser("status", help="counts per state and credits of a batch")
    status.add_argument("dir", help="the batch's output folder")
    add_json(status, "the status")
    _add_db(status)
    status.set_defaults(func=_status)


def _add_db(p: argparse.ArgumentParser) -> None:
    from .worker import add_db

    add_db(p)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _config(args: argparse.Namespace) -> Any:
    from .generate import load_config

    return load_config(getattr(args, "config", None))


# -- plan ----------------------------------------------------------------------------------------


def _print_plan(plan: BatchPlan, source: str) -> None:
    from kierouter.batch import USD_PER_CREDIT

    out = sys.stdout
    out.write(f"batch {source}: {plural(plan.rows, 'row')}, {plural(len(plan.jobs), 'job')}\n")
    rows = [
        (model, int(v["jobs"]), f"{v['expected_credits']:.1f}")
        for model, v in plan.per_model.items()
    ]
    print_table(("first model", "jobs", "expected credits"), rows)
    out.write(
        f"expected: {plan.expected_credits:.1f} credits (≈ ${plan.expected_usd:.2f})   "
        f"worst case: {plan.worst_case_credits:.1f} credits (≈ ${plan.worst_case_usd:.2f})\n"
        f"creates: ≈ {plan.expected_creates:.0f} at {plan.create_limit} per "
        f"{plan.create_window:g} s → ≈ {duration(plan.eta_seconds)}\n"
        f"(1 credit ≈ ${USD_PER_CREDIT})\n"
    )


def _plan(args: argparse.Namespace) -> int:
    from kierouter.batch import plan_rows

    config, _ = restricted(args, _config(args))
    settings = settings_for(args, config)
    rows = _rows(args, config)
    plan = plan_rows(rows, settings, source=args.file, config=config)
    over = args.budget is not None and plan.expected_credits > args.budget + 1e-9
    if args.json:
        print_json({**plan.summary(), "budget": args.budget, "fits_budget": not over})
    else:
        _print_plan(plan, args.file)
        if args.budget is not None:
            verdict = "exceeds" if over else "fits"
            sys.stdout.write(f"budget: {args.budget:g} credits — the plan {verdict} it\n")
    return 2 if over else 0


# -- run and resume ------------------------------------------------------------------------------


def _report(report: BatchReport, as_json: bool) -> int:
    import msgspec

    if report.halted and report.stopped:  # KIE refused the key or the account ran dry
        print_error(report.stopped)
    if as_json:
        print_json({**msgspec.to_builtins(report), "complete": report.complete})
    else:
        out = sys.stdout
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
        out.write(f"{report.out_dir}: {counts}\n")
        out.write(
            f"spent: {report.spent:g} credits (≈ ${report.usd:.2f})"
            + (f" of a {report.budget:g}-credit budget" if report.budget is not None else "")
            + f"; {plural(report.created_this_run, 'task')} created in this run\n"
        )
        if report.stopped:
            out.write(f"stopped: {report.stopped}\n")
        if report.unknown:
            out.write(
                f"unknown: {plural(len(report.unknown), 'create')} whose answer was lost, not "
                f"resubmitted: {', '.join(report.unknown[:10])}\n"
            )
        if report.failed:
            out.write(f"failed: {', '.join(report.failed[:10])}\n")
        out.write(f"manifest: {report.manifest}\n")
        if not report.complete:
            out.write(f"continue with: {_resume_command(report.out_dir)}\n")
    return _exit_code(report)


def _exit_code(report: BatchReport) -> int:
    if report.complete:
        return 0
    if report.halted == "auth":
        return 3
    if report.halted == "credits":
        return 4
    if report.unknown:
        return 5
    if report.undelivered:
        return 6  # paid but not saved: kierouter fetch DIR (or batch resume) saves them
    return 1


def _resume_command(folder: str | Path) -> str:
    return f"kierouter batch resume {shlex.quote(str(folder))}"


def _rows(args: argparse.Namespace, config: Any) -> Any:
    from kierouter.batch import read_rows, with_pipeline

    rows = read_rows(args.file, fmt=args.format)
    batch = getattr(config, "batch", None)
    return with_pipeline(rows, tuple(getattr(batch, "pipeline", ()) or ()))


def _execute(
    args: argparse.Namespace,
    folder: Path,
    start: Callable[[BatchProgress | None, float], Coroutine[Any, Any, BatchReport]],
) -> int:
    """Run ``start`` with the progress display; on Ctrl-C, say how to continue."""
    mode = progress_mode(args)
    display = BatchProgress(mode) if mode != "off" else None
    interval = args.progress_interval or (0.5 if mode == "live" else 5.0)
    try:
        with display if display is not None else contextlib.nullcontext():
            report = asyncio.run(start(display, interval))
    except KeyboardInterrupt:
        done = display.snapshot if display is not None else None
        so_far = f"{done['done']} of {plural(done['jobs'], 'job')} done; " if done else ""
        sys.stderr.write(
            f"\ninterrupted: {so_far}nothing paid is lost. Continue with:\n"
            f"  {_resume_command(folder)}\n"
        )
        return 130
    finally:
        if not args.no_log:
            record_batch(folder)
    return _report(report, args.json)


def _run(args: argparse.Namespace) -> int:
    from kierouter._errors import ConfigurationError
    from kierouter.batch import JOURNAL_FILE, BatchBudgetError, plan_rows, run_batch

    where = target(args)  # no key: exit 3 before anything is planned or sent
    config, restriction = restricted(args, _config(args))
    settings = settings_for(args, config, where)
    batch = getattr(config, "batch", None)
    defaults = getattr(config, "defaults", None)
    out = args.out or getattr(batch, "out_dir", None) or getattr(defaults, "out_dir", None)
    if not out:
        raise ConfigurationError("batch run needs --out DIR (or [batch] out_dir in the config)")
    folder = Path(out).resolve()
    check_out_dir(folder)
    rows = _rows(args, config)
    settings.check()
    plan = plan_rows(rows, settings, source=args.file, config=config)
    if settings.budget is not None and plan.expected_credits > settings.budget + 1e-9:
        raise BatchBudgetError(plan.expected_credits, settings.budget)
    if not (folder / JOURNAL_FILE).exists():  # else run_batch refuses: never touch that batch
        store_restriction(folder, restriction)
    if getattr(args, "db", None):
        return _execute(args, folder, _db_run(args, where, rows, folder, settings, plan))

    def start(progress: BatchProgress | None, interval: float) -> Coroutine[Any, Any, BatchReport]:
        return run_batch(
            rows,
            folder,
            settings,
            api_key=where.api_key,
            source=args.file,
            progress=progress,
            progress_interval=interval,
            plan=plan,
            config=config,
        )

    return _execute(args, folder, start)


def _db_run(
    args: argparse.Namespace, where: Any, rows: Any, folder: Path, settings: Any, plan: Any
) -> Any:
    """``batch run --db``: the batch in PostgreSQL, this process one of its workers."""
    from .worker import _check_scale, options_for

    _check_scale()
    from kierouter.scale._batch import run_batch_db

    options = options_for(args, where)

    def start(progress: BatchProgress | None, interval: float) -> Coroutine[Any, Any, BatchReport]:
        return run_batch_db(
            rows,
            folder,
            settings,
            options,
            plan=plan,
            source=args.file,
            progress=progress,
            progress_interval=interval,
        )

    return start


def _db_resume(args: argparse.Namespace, folder: Path) -> int:
    """``batch resume --db``: the rows not done back on the queue, this process a worker."""
    from .worker import _check_scale, options_for

    _check_scale()
    from kierouter.scale._batch import resume_batch_db

    options = options_for(args, target(args))

    def start(progress: BatchProgress | None, interval: float) -> Coroutine[Any, Any, BatchReport]:
        return resume_batch_db(
            folder,
            options,
            progress=progress,
            progress_interval=interval,
            requeue_unknown=args.resubmit_unknown,
        )

    return _execute(args, folder, start)


def _resume(args: argparse.Namespace) -> int:
    from kierouter.batch import resume_batch

    folder = Path(args.dir).resolve()
    if getattr(args, "db", None):
        return _db_resume(args, folder)
    stored = _storedsettings_for(folder)
    overrides: dict[str, Any] = run_options(args)
    if args.sim or args.sim_url:
        where = target(args)
    elif stored.get("sim") or stored.get("loopback"):
        kind: Literal["sim", "url"] = "sim" if stored.get("sim") else "url"
        key = None if kind == "sim" else os.environ.get("KIE_SIM_API_KEY") or SIM_KEY
        scale = args.time_scale or stored.get("time_scale") or 1.0
        where = Target(kind, stored.get("base_url"), key, scale)
    else:
        where = target(args)  # KIE: the key is checked before anything runs
    overrides.update(where_for(where))
    config, restriction = restricted(args, _config(args), folder)
    if args.models or args.max_credits is not None:
        store_restriction(folder, restriction)

    def start(progress: BatchProgress | None, interval: float) -> Coroutine[Any, Any, BatchReport]:
        return resume_batch(
            folder,
            api_key=where.api_key,
            progress=progress,
            progress_interval=interval,
            requeue_unknown=args.resubmit_unknown,
            config=config,
            **overrides,
        )

    return _execute(args, folder, start)


def _storedsettings_for(folder: Path) -> dict[str, Any]:
    """The settings a batch's journal holds (a clear error when there is no batch)."""
    from kierouter.batch import JOURNAL_FILE, batch_status
    from kierouter.journal import SqliteJournal

    path = folder / JOURNAL_FILE
    if not path.exists():
        batch_status(folder)  # raises the clear "no batch here" error
    backend = SqliteJournal(path)
    try:
        meta = backend.get_meta("batch") or {}
    finally:
        backend.close()
    settings: dict[str, Any] = meta.get("settings") or {}
    return settings


def _status(args: argparse.Namespace) -> int:
    from kierouter.batch import batch_status

    if getattr(args, "db", None):
        from .worker import _check_scale

        _check_scale()
        from kierouter.scale._batch import db_status

        print_json(db_status(args.dir, args.db)) if args.json else _print_db_status(
            db_status(args.dir, args.db)
        )
        return 0
    status = batch_status(args.dir)
    if args.json:
        print_json(status)
        return 0
    out = sys.stdout
    out.write(
        f"{status['out_dir']}: {plural(status['rows'], 'row')}, {plural(status['jobs'], 'job')}\n"
    )
    print_table(("state", "jobs"), [(k, v) for k, v in status["counts"].items()])
    expected = status["expected_credits"]
    out.write(
        f"spent: {status['spent']:g} credits (≈ ${status['usd']:.2f})"
        + (f"; planned ≈ {expected:.1f}" if expected is not None else "")
        + (f"; budget {status['budget']:g}" if status["budget"] is not None else "")
        + f"; {plural(status['creates'], 'task')} created\n"
    )
    if status["unknown"]:
        out.write(f"unknown (awaiting reconciliation): {', '.join(status['unknown'][:10])}\n")
    for failed in status["failed"][:10]:
        out.write(f"failed {failed['job_key']}: {failed['error']}\n")
    if status["complete"]:
        out.write("complete\n")
    else:
        out.write(f"incomplete; continue with: {_resume_command(Path(args.dir).resolve())}\n")
    return 0


def _print_db_status(status: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"{status['out_dir']}: batch {status['batch_id']}, {plural(status['jobs'], 'job')}\n")
    print_table(("state", "jobs"), [(k, v) for k, v in status["counts"].items()])
    budget = f"; budget {status['budget']:g}" if status["budget"] is not None else ""
    out.write(
        f"spent: {status['spent']:g} credits (settled {status['settled']:g}, reserved "
        f"{status['reserved']:g}{budget}); {plural(status['creates'], 'task')} created\n"
    )
    out.write("complete\n" if status["complete"] else "incomplete\n")


def run(args: argparse.Namespace) -> int:
    """Dispatch (kept for the CLI contract; subcommands set their own ``func``)."""
    func = getattr(args, "func", None)
    return int(func(args)) if func is not None and func is not run else 2
