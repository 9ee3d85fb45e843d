"""``kierouter generate PROMPT``: route one job and download its images.

``--sim`` runs everything against the built-in emulator, in-process, over real HTTP: no KIE key
needed; ``--sim-url URL`` uses a running one. Without either, a missing key ends the command
(exit 3) before anything is planned or sent. On a terminal a spinner line shows the job's stage,
elapsed time and credits; piped or with ``--json`` plain lines go to stderr; ``-q`` shows none.
Every job is recorded for ``kierouter logs`` unless ``--no-log``.

Exit codes as in :mod:`kierouter.cli`; with ``--json`` a failed job still prints its
attempt trail (to stdout) before exiting non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import (
    CliError,
    exit_code_for,
    no_plan_message,
    plural,
    print_error,
    print_json,
    request_from_args,
)
from ._options import (
    Target,
    add_config,
    add_count,
    add_json,
    add_no_log,
    add_policy,
    add_target,
    check_models,
    check_out_dir,
    restrict,
    target,
)
from ._progress import JobProgress, progress_mode

if TYPE_CHECKING:
    from kierouter._models import Attempt, Result

__all__ = ["USD_PER_CREDIT", "add_parser", "attempt_json", "result_json", "run"]

#: 1 credit ≈ $0.005 (KIE-API.md §3.6).
USD_PER_CREDIT = 0.005


def add_parser(sub: Any) -> None:
    """Add the ``generate`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "generate",
        help="generate (or edit) an image, escalating across models",
        description="Route one image job across KIE's models and download the result.",
    )
    p.add_argument(
        "prompt",
        nargs="?",
        default="",
        help="what to draw (or how to edit the --image inputs); not needed for --task "
        "remove-background or upscale",
    )
    p.add_argument(
        "--task",
        choices=("generate", "edit", "remove-background", "upscale"),
        help="task kind (default: edit with --image, else generate)",
    )
    add_policy(p)
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="reference image: a local PNG/JPEG/WEBP file (uploaded to KIE) or a URL; repeatable",
    )
    p.add_argument("--aspect-ratio", help="e.g. 1:1, 16:9, 9:16")
    p.add_argument("--resolution", choices=("1K", "2K", "4K"), help="resolution tier")
    p.add_argument("--seed", type=int, help="seed for reproducible results")
    p.add_argument("--negative-prompt", help="what the image must not show (models that take it)")
    p.add_argument("--language", help="prompt language, ISO code (default: from the script)")
    add_count(p)
    p.add_argument("--judge", help="judge the result before accepting it (e.g. 'basic')")
    p.add_argument("--job-key", help="your own key for this job (used in file names)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: the configuration's [defaults] out_dir, else "
        "./kierouter-out)",
    )
    add_target(p)
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="with --sim: an emulator scenario TOML (faults, model behaviour, Market models)",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="receive KIE's callbacks on this address instead of polling (with --public-url)",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        help="where KIE reaches --listen (HMAC key from $KIE_WEBHOOK_HMAC_KEY, if set)",
    )
    add_config(p)
    add_json(p)
    add_no_log(p)
    p.set_defaults(func=run)


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """One attempt as the JSON the CLI prints."""
    return {
        "model": attempt.model,
        "task_id": attempt.task_id,
        "outcome": attempt.outcome,
        "reason": attempt.reason,
        "credits": attempt.credits,
        "seed": attempt.seed,
        "seed_ignored": attempt.seed_ignored,
    }


def result_json(result: Result) -> dict[str, Any]:
    """A result as the JSON the CLI prints."""
    return {
        "served_model": result.served_model,
        "attempts": [attempt_json(a) for a in result.attempts],
        "credits": result.credits,
        "usd": round(result.credits * USD_PER_CREDIT, 6),
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in result.files],
        "urls": list(result.urls),
        "seed": result.seed,
        "job_key": result.job_key,
        "task_id": result.task_id,
        "delivery": result.delivery,
        "delivery_error": result.delivery_error,
        "watching": list(result.watching),
    }


def load_config(path: str | None) -> Any:
    """Load ``--config`` (or ``$KIEROUTER_CONFIG``, or ``./kierouter.toml``)."""
    from kierouter._config import load_config as load

    return load(path)


def _router_options(args: argparse.Namespace, where: Target, config: Any) -> dict[str, Any]:
    """Router keywords for ``where`` and the command's options."""
    from kierouter._router import WebhookConfig

    defaults = config.defaults
    options: dict[str, Any] = {
        "out_dir": str(Path(args.out or defaults.out_dir or "kierouter-out").resolve()),
        "config": config,
        "judge": args.judge or defaults.judge,
        "api_key": where.api_key,
        "base_url": where.base_url,
        "log": not args.no_log,
        "poll": config.polling.to_poll_config(),
    }
    if where.local:
        return {
            **options,
            "allow_private_downloads": True,  # the emulator serves results on loopback
            "latency_scale": 1.0 / where.time_scale,
            "webhook": WebhookConfig(listen="127.0.0.1:0"),
        }
    if args.listen or args.public_url:
        import os

        options["webhook"] = WebhookConfig(
            public_url=args.public_url,
            listen=args.listen,
            hmac_key=os.environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
        )
    elif config.webhook.enabled:
        options["webhook"] = config.webhook.to_webhook_config()
    return options


async def _generate(
    args: argparse.Namespace, where: Target, progress: JobProgress | None
) -> Result:
    from kierouter._router import Router
    from kierouter.policy import resolve_policy

    request = request_from_args(args)
    config = load_config(args.config)
    options = _router_options(args, where, config)
    check_out_dir(options["out_dir"])
    if progress is not None:
        options["event_sinks"] = {"progress": progress}
    async with contextlib.AsyncExitStack() as stack:
        if where.kind == "sim":
            from kierouter.sim import Emulator

            emu = await stack.enter_async_context(
                Emulator(time_scale=where.time_scale, scenario=args.scenario)
            )
            options.update(base_url=emu.base_url, api_key=emu.api_key)
        else:
            from kierouter._upload_cache import SqliteUploadCache

            # local --image files: uploads reused across runs while KIE keeps them (3 days)
            options["upload_cache"] = SqliteUploadCache.default()
        router = Router(**options)
        policy = restrict(
            resolve_policy(
                args.policy or config.defaults.policy, registry=router.registry, config=config
            ),
            models=check_models(args.models, router.registry),
            max_credits=args.max_credits,
        )
        plan = router.explain(request, policy)
        if not plan.steps:  # one readable line, not every dropped model's reason
            raise CliError(no_plan_message(plan), 1)
        if progress is not None:
            cards = router.registry.cards
            progress.price = lambda m: cards[m].credits_for(request) if m in cards else 0.0
        await stack.enter_async_context(router)
        return await router.generate(request, policy=policy, job_key=args.job_key)
    raise AssertionError("unreachable")  # pragma: no cover - the stack re-raises


def _print_human(result: Result) -> None:
    import sys

    out = sys.stdout
    out.write(f"served by {result.served_model}\n")
    for attempt in result.attempts:
        if attempt.outcome != "success":
            out.write(f"  tried {attempt.model}: {attempt.outcome} ({attempt.reason})\n")
    for file in result.files:
        out.write(f"  {file.path}  ({plural(file.size, 'byte')})\n")
    if not result.files:
        for url in result.urls:
            out.write(f"  {url}\n")
    usd = result.credits * USD_PER_CREDIT
    out.write(f"credits: {result.credits:g} (≈ ${usd:.3f})\n")


def _interrupted(progress: JobProgress | None, out_dir: str, where: Target) -> None:
    """After Ctrl-C: a task already created may still finish (and be billed); say how to get it
    from where it was created (an in-process emulator stopped with the command: nothing to get)."""
    if progress is None or progress.task_id is None or progress.final is not None:
        return
    if where.kind == "sim":
        return
    import shlex

    command = [
        "kierouter", "status", progress.task_id, "--model", progress.model or "",
        "--download", out_dir,
    ]  # fmt: skip
    if where.kind == "url":
        command += ["--sim-url", where.base_url or "", "--time-scale", f"{where.time_scale:g}"]
    progress.say(
        f"task {progress.task_id} on {progress.model} may still finish and be billed; "
        f"fetch it with: {shlex.join(command)}"
    )


def run(args: argparse.Namespace) -> int:
    """Run one job; print the result."""
    from kierouter._errors import KieRouterError

    if args.scenario and not args.sim:
        raise CliError("--scenario needs --sim (it configures the built-in emulator)")
    where = target(args)  # no key: exit 3 before anything is planned or sent
    if args.out is not None:  # absolute paths in the output, whatever the cwd
        args.out = str(Path(args.out).resolve())
    mode = progress_mode(args)
    progress = JobProgress(mode) if mode != "off" else None
    try:
        with progress if progress is not None else contextlib.nullcontext():
            result = asyncio.run(_generate(args, where, progress))
    except KeyboardInterrupt:
        _interrupted(progress, args.out or "kierouter-out", where)
        raise
    except CliError as exc:
        if args.json and exc.code == 1:  # no model could serve it: the (empty) attempt trail
            print_json({"error": str(exc), "attempts": []})
        raise
    except KieRouterError as exc:
        paid = getattr(exc, "result", None)  # PaidUndeliveredError: the task id, URLs, credits
        attempts = getattr(exc, "attempts", None)
        if not args.json or (attempts is None and paid is None):
            raise
        if paid is not None:
            print_json({"error": str(exc), **result_json(paid)})
        else:
            print_json({"error": str(exc), "attempts": [attempt_json(a) for a in attempts or ()]})
        print_error(str(exc))
        return exit_code_for(exc)
    if args.json:
        print_json(result_json(result))
    else:
        _print_human(result)
    return 0
