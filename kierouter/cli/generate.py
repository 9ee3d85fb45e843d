"""``kierouter generate PROMPT``: route one job and download its images.

``--sim`` runs everything against the built-in emulator, in-process, over real HTTP: no KIE key
needed. Exit codes as in :mod:`kierouter.cli`; with ``--json`` a failed job still prints its
attempt trail (to stdout) before exiting non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import exit_code_for, print_error, print_json, request_from_args

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
    p.add_argument("--policy", help="routing policy: auto (default), budget, speed, quality, ...")
    p.add_argument(
        "--image", action="append", default=[], metavar="URL", help="reference image (repeatable)"
    )
    p.add_argument("--aspect-ratio", help="e.g. 1:1, 16:9, 9:16")
    p.add_argument("--resolution", choices=("1K", "2K", "4K"), help="resolution tier")
    p.add_argument("--seed", type=int, help="seed for reproducible results")
    p.add_argument("--negative-prompt", help="what the image must not show (models that take it)")
    p.add_argument("--language", help="prompt language, ISO code (default: from the script)")
    p.add_argument("--count", type=int, default=1, help="number of images (default 1)")
    p.add_argument("--judge", help="judge the result before accepting it (e.g. 'basic')")
    p.add_argument("--job-key", help="your own key for this job (used in file names)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: the configuration's [defaults] out_dir, else "
        "./kierouter-out)",
    )
    p.add_argument("--sim", action="store_true", help="run against the built-in emulator")
    p.add_argument(
        "--time-scale",
        type=float,
        default=20.0,
        help="with --sim: emulated seconds per real second (default 20)",
    )
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
    p.add_argument("--config", metavar="FILE", help="kierouter TOML configuration")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
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
    }


def load_config(path: str | None) -> Any:
    """Load ``--config`` (or the default configuration) when the config module is present."""
    try:
        from kierouter import _config
    except ImportError:
        if path:
            from kierouter._errors import ConfigurationError

            raise ConfigurationError(
                "--config needs kierouter._config, which is not installed"
            ) from None
        return None
    loader = getattr(_config, "load_config", None)
    if loader is None:
        return None
    return loader(path) if path else loader()


def _absolute(path: str) -> str:
    return str(Path(path).resolve())


async def _generate(args: argparse.Namespace) -> Result:
    from kierouter._router import Router, WebhookConfig

    if getattr(args, "scenario", None) and not args.sim:
        from kierouter._errors import ConfigurationError

        raise ConfigurationError("--scenario needs --sim (it configures the built-in emulator)")
    request = request_from_args(args)
    config = load_config(args.config)
    defaults = getattr(config, "defaults", None)
    options: dict[str, Any] = {
        "policy": args.policy or getattr(defaults, "policy", None) or "auto",
        "out_dir": _absolute(args.out or getattr(defaults, "out_dir", None) or "kierouter-out"),
        "config": config,
        "judge": args.judge or getattr(defaults, "judge", None),
    }
    polling = getattr(config, "polling", None)
    if polling is not None:
        options["poll"] = polling.to_poll_config()
    webhook = getattr(config, "webhook", None)
    if not args.sim:
        if not (args.listen or args.public_url) and webhook is not None and webhook.enabled:
            options["webhook"] = webhook.to_webhook_config()
        elif args.listen or args.public_url:
            import os

            options["webhook"] = WebhookConfig(
                public_url=args.public_url,
                listen=args.listen,
                hmac_key=os.environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
            )
        async with Router(**options) as router:
            return await router.generate(request, job_key=args.job_key)
    from kierouter.sim import Emulator

    if args.time_scale <= 0:
        from kierouter._errors import ConfigurationError

        raise ConfigurationError("--time-scale must be positive")
    async with (
        Emulator(time_scale=args.time_scale, scenario=getattr(args, "scenario", None)) as emu,
        Router(
            base_url=emu.base_url,
            api_key=emu.api_key,
            allow_private_downloads=True,  # the emulator serves results on loopback
            latency_scale=1.0 / args.time_scale,
            webhook=WebhookConfig(listen="127.0.0.1:0"),
            **options,
        ) as router,
    ):
        return await router.generate(request, job_key=args.job_key)


def _print_human(result: Result) -> None:
    import sys

    out = sys.stdout
    out.write(f"served by {result.served_model}\n")
    for attempt in result.attempts:
        if attempt.outcome != "success":
            out.write(f"  tried {attempt.model}: {attempt.outcome} ({attempt.reason})\n")
    for file in result.files:
        out.write(f"  {file.path}  ({file.size} bytes)\n")
    if not result.files:
        for url in result.urls:
            out.write(f"  {url}\n")
    usd = result.credits * USD_PER_CREDIT
    out.write(f"credits: {result.credits:g} (≈ ${usd:.3f})\n")


def run(args: argparse.Namespace) -> int:
    """Run one job; print the result."""
    from kierouter._errors import KieRouterError

    if args.out is not None:  # absolute paths in the output, whatever the cwd
        args.out = str(Path(args.out).resolve())
    try:
        result = asyncio.run(_generate(args))
    except KieRouterError as exc:
        attempts = getattr(exc, "attempts", None)
        if not args.json or attempts is None:
            raise
        print_json({"error": str(exc), "attempts": [attempt_json(a) for a in attempts]})
        print_error(str(exc))
        return exit_code_for(exc)
    if args.json:
        print_json(result_json(result))
    else:
        _print_human(result)
    return 0
