"""``kierouter batch plan|run|resume|status``: price, run, resume and inspect batches.

``plan FILE`` prices a batch with no network call. ``run FILE --out DIR`` journals every job in
``DIR/journal.sqlite``, paces creates to KIE's limit, downloads each image at once and writes
``DIR/manifest.jsonl``; ``resume DIR`` continues after any interruption; ``status DIR`` reports.

Exit codes (as in :mod:`kierouter.cli`): 0 every job downloaded; 1 the batch stopped short
(budget reached, failed rows); 2 bad input or the plan exceeds ``--budget`` (nothing started);
3/4 KIE refused the key / the account ran dry; 5 creates whose answer was lost are ``unknown``
(resume later: their callback reconciles them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from ._common import print_json, print_table

if TYPE_CHECKING:
    from kierouter.batch import BatchPlan, BatchReport, BatchSettings

__all__ = ["add_parser", "format_progress", "run"]


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--create-rate",
        type=int,
        metavar="N",
        help="at most N new tasks per --create-window (KIE: 20; default 20)",
    )
    p.add_argument(
        "--create-window",
        type=float,
        metavar="S",
        help="the create window in seconds (KIE: 10; default 10)",
    )


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrency", type=int, metavar="N", help="rows in progress at once")
    p.add_argument("--budget", type=float, metavar="CREDITS", help="most credits to spend")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sim", action="store_true", help="run against a built-in emulator")
    group.add_argument(
        "--sim-url", metavar="URL", help="run against an emulator at URL (kierouter sim)"
    )
    p.add_argument(
        "--time-scale",
        type=float,
        help="with --sim/--sim-url: the emulator's time scale (default 20)",
    )
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="with --sim: an emulator scenario TOML (faults, model behaviour, Market models)",
    )
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="receive KIE's callbacks here (with --public-url)"
    )
    p.add_argument("--public-url", metavar="URL", help="where KIE reaches --listen")
    p.add_argument("--config", metavar="FILE", help="kierouter TOML configuration")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--progress-interval",
        type=float,
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

    plan = bsub.add_parser("plan", help="price a batch (no network call)")
    plan.add_argument("file", help="prompts: .txt (one a line), .jsonl or .csv")
    plan.add_argument("--policy", help="default policy of rows that name none (default auto)")
    plan.add_argument("--format", choices=("text", "jsonl", "csv"), help="override detection")
    plan.add_argument("--budget", type=float, metavar="CREDITS", help="check the plan against it")
    plan.add_argument("--config", metavar="FILE", help="kierouter TOML configuration")
    _limits(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=_plan)

    go = bsub.add_parser("run", help="run a batch into an output folder")
    go.add_argument("file", help="prompts: .txt (one a line), .jsonl or .csv")
    go.add_argument(
        "--out",
        metavar="DIR",
        help="output folder, holds the journal (default: [batch] out_dir of the configuration)",
    )
    go.add_argument("--policy", help="default policy of rows that name none (default auto)")
    go.add_argument("--format", choices=("text", "jsonl", "csv"), help="override detection")
    _limits(go)
    _target(go)
    go.set_defaults(func=_run)

    resume = bsub.add_parser("resume", help="continue a batch after any interruption")
    resume.add_argument("dir", help="the batch's output folder")
    _limits(resume)
    _target(resume)
    resume.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="create again the tasks whose create answer was lost (may pay twice)",
    )
    resume.set_defaults(func=_resume)

    status = bsub.add_parser("status", help="counts per state and credits of a batch")
    status.add_argument("dir", help="the batch's output folder")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds / 3600:.1f}h"


def format_progress(snapshot: dict[str, Any]) -> str:
    """One progress line: counts per state, credits so far, ETA."""
    counts = snapshot["counts"]
    parts = [f"{state} {n}" for state, n in counts.items() if n]
    budget = snapshot.get("budget")
    spent = f"{snapshot['spent']:g}" + (f"/{budget:g}" if budget is not None else "")
    return (
        f"[{snapshot['done']}/{snapshot['jobs']}] {' · '.join(parts)} | "
        f"{spent} credits (${snapshot['usd']:.2f}) | "
        + ("done" if snapshot["done"] == snapshot["jobs"] else f"ETA {_duration(snapshot['eta'])}")
    )


def _progress(interval: float | None) -> tuple[Any, float]:
    tty = sys.stderr.isatty()
    if interval is None:
        interval = 0.5 if tty else 5.0

    def show(snapshot: dict[str, Any]) -> None:
        line = format_progress(snapshot)
        if tty:
            sys.stderr.write("\r\x1b[2K" + line)
            if snapshot["done"] == snapshot["jobs"]:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show, interval


def _config(args: argparse.Namespace) -> Any:
    from .generate import load_config

    return load_config(getattr(args, "config", None))


#: command-line option -> BatchSettings attribute, for the options run and resume share
_RUN_OPTIONS = {
    "budget": "budget",
    "concurrency": "concurrency",
    "create_rate": "create_limit",
    "create_window": "create_window",
    "listen": "listen",
    "public_url": "public_url",
    "time_scale": "time_scale",
    "scenario": "scenario",
}


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, by settings attribute."""
    given = {attr: getattr(args, name, None) for name, attr in _RUN_OPTIONS.items()}
    if given["scenario"] is not None:  # stored for resume, which may run from elsewhere
        given["scenario"] = os.path.abspath(given["scenario"])
    return {attr: value for attr, value in given.items() if value is not None}


def _settings(args: argparse.Namespace, config: Any = None) -> BatchSettings:
    from kierouter.batch import BatchSettings

    s = BatchSettings()
    batch = getattr(config, "batch", None)
    if batch is not None and getattr(config, "path", None):  # a configuration file was found
        s.concurrency = batch.concurrency
        s.create_limit = batch.create_rate
        s.create_window = batch.create_window
        default_policy = getattr(getattr(config, "defaults", None), "policy", None)
        s.policy = batch.policy or (default_policy if default_policy != "auto" else None)
    if getattr(args, "policy", None):
        s.policy = args.policy
    for attr, value in _run_options(args).items():
        setattr(s, attr, value)
    if getattr(args, "sim", False):
        s.sim, s.loopback, s.base_url = True, False, None
    if getattr(args, "sim_url", None):
        s.sim, s.loopback, s.base_url = False, True, args.sim_url.rstrip("/")
    if (s.sim or s.loopback) and getattr(args, "time_scale", None) is None:
        s.time_scale = 20.0
    if s.sim or s.loopback:
        s.read_rate = min(1000.0, 10.0 * s.time_scale)
    if s.scenario is not None and not s.sim:
        from kierouter._errors import ConfigurationError

        raise ConfigurationError("--scenario needs --sim (it configures the built-in emulator)")
    return s


def _print_plan(plan: BatchPlan, source: str) -> None:
    from kierouter.batch import USD_PER_CREDIT

    out = sys.stdout
    out.write(f"batch {source}: {plan.rows} rows, {len(plan.jobs)} jobs\n")
    rows = [
        (model, int(v["jobs"]), f"{v['expected_credits']:.1f}")
        for model, v in plan.per_model.items()
    ]
    print_table(("first model", "jobs", "expected credits"), rows)
    out.write(
        f"expected: {plan.expected_credits:.1f} credits (≈ ${plan.expected_usd:.2f})   "
        f"worst case: {plan.worst_case_credits:.1f} credits (≈ ${plan.worst_case_usd:.2f})\n"
        f"creates: ≈ {plan.expected_creates:.0f} at {plan.create_limit} per "
        f"{plan.create_window:g} s → ≈ {_duration(plan.eta_seconds)}\n"
        f"(1 credit ≈ ${USD_PER_CREDIT})\n"
    )


def _plan(args: argparse.Namespace) -> int:
    from kierouter.batch import plan_rows

    config = _config(args)
    settings = _settings(args, config)
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


def _report(report: BatchReport, as_json: bool) -> int:
    import msgspec

    if as_json:
        print_json({**msgspec.to_builtins(report), "complete": report.complete})
    else:
        out = sys.stdout
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
        out.write(f"{report.out_dir}: {counts}\n")
        out.write(
            f"spent: {report.spent:g} credits (≈ ${report.usd:.2f})"
            + (f" of a {report.budget:g}-credit budget" if report.budget is not None else "")
            + f"; {report.created_this_run} tasks created in this run\n"
        )
        if report.stopped:
            out.write(f"stopped: {report.stopped}\n")
        if report.unknown:
            out.write(
                f"unknown: {len(report.unknown)} create(s) whose answer was lost, not "
                f"resubmitted: {', '.join(report.unknown[:10])}\n"
            )
        if report.failed:
            out.write(f"failed: {', '.join(report.failed[:10])}\n")
        out.write(f"manifest: {report.manifest}\n")
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
    return 1


def _api_key(settings: BatchSettings) -> str | None:
    if settings.loopback:
        return os.environ.get("KIE_SIM_API_KEY") or "sim-key"
    return None


def _rows(args: argparse.Namespace, config: Any) -> Any:
    from kierouter.batch import read_rows, with_pipeline

    rows = read_rows(args.file, fmt=args.format)
    batch = getattr(config, "batch", None)
    return with_pipeline(rows, tuple(getattr(batch, "pipeline", ()) or ()))


def _run(args: argparse.Namespace) -> int:
    from kierouter._errors import ConfigurationError
    from kierouter.batch import run_batch

    config = _config(args)
    settings = _settings(args, config)
    batch = getattr(config, "batch", None)
    defaults = getattr(config, "defaults", None)
    out = args.out or getattr(batch, "out_dir", None) or getattr(defaults, "out_dir", None)
    if not out:
        raise ConfigurationError("batch run needs --out DIR (or [batch] out_dir in the config)")
    rows = _rows(args, config)
    show, interval = _progress(args.progress_interval)
    report = asyncio.run(
        run_batch(
            rows,
            out,
            settings,
            api_key=_api_key(settings),
            source=args.file,
            progress=show,
            progress_interval=interval,
            config=config,
        )
    )
    return _report(report, args.json)


def _resume(args: argparse.Namespace) -> int:
    from kierouter.batch import resume_batch

    overrides: dict[str, Any] = _run_options(args)
    if args.sim:
        overrides.update(sim=True, loopback=False, base_url=None)
    if args.sim_url:
        overrides.update(sim=False, loopback=True, base_url=args.sim_url.rstrip("/"))
    loopback = bool(args.sim_url) or _stored_loopback(args.dir)
    show, interval = _progress(args.progress_interval)
    report = asyncio.run(
        resume_batch(
            args.dir,
            api_key=(os.environ.get("KIE_SIM_API_KEY") or "sim-key") if loopback else None,
            progress=show,
            progress_interval=interval,
            requeue_unknown=args.resubmit_unknown,
            config=_config(args),
            **overrides,
        )
    )
    return _report(report, args.json)


def _stored_loopback(folder: str) -> bool:
    from kierouter.batch import batch_status

    try:
        from kierouter.journal import SqliteJournal

        path = os.path.join(folder, "journal.sqlite")
        if not os.path.exists(path):
            batch_status(folder)  # raises the clear "no batch here" error
        backend = SqliteJournal(path)
        try:
            meta = backend.get_meta("batch") or {}
        finally:
            backend.close()
    except OSError:
        return False
    return bool((meta.get("settings") or {}).get("loopback"))


def _status(args: argparse.Namespace) -> int:
    from kierouter.batch import batch_status

    status = batch_status(args.dir)
    if args.json:
        print_json(status)
        return 0
    out = sys.stdout
    out.write(f"{status['out_dir']}: {status['rows']} rows, {status['jobs']} jobs\n")
    print_table(("state", "jobs"), [(k, v) for k, v in status["counts"].items()])
    expected = status["expected_credits"]
    out.write(
        f"spent: {status['spent']:g} credits (≈ ${status['usd']:.2f})"
        + (f"; planned ≈ {expected:.1f}" if expected is not None else "")
        + (f"; budget {status['budget']:g}" if status["budget"] is not None else "")
        + f"; {status['creates']} tasks created\n"
    )
    if status["unknown"]:
        out.write(f"unknown (awaiting reconciliation): {', '.join(status['unknown'][:10])}\n")
    for failed in status["failed"][:10]:
        out.write(f"failed {failed['job_key']}: {failed['error']}\n")
    out.write("complete\n" if status["complete"] else "incomplete: kierouter batch resume DIR\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch (kept for the CLI contract; subcommands set their own ``func``)."""
    func = getattr(args, "func", None)
    return int(func(args)) if func is not None and func is not run else 2
