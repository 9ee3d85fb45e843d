"""``kierouter cost --count N --policy NAME``: the quick-reference sheet's cost calculator.

Prices one job the way the policy would plan it, then multiplies by ``--count``: the first
choice's credits (what the sheet's calculator shows, e.g. 100 × 3.5 = 350 credits ≈ $1.75), the
expected credits per accepted image when failed or rejected attempts escalate (the plan's
``credits_per_accepted``: KIE bills produced images only) and the worst case (every planned
model tried and billed). ``--upscale`` and ``--remove-background`` add the pipeline's
Recraft steps (planned under the ``utility`` policy). 1 credit ≈ $0.005. No network call.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import no_plan_message, plural, print_json, print_table
from ._options import add_config, add_count, add_json, add_policy

__all__ = ["add_parser", "estimate", "run"]

_SAMPLE_IMAGE = "https://example.com/image.png"


def add_parser(sub: Any) -> None:
    """Add the ``cost`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "cost",
        help="estimate the credits and dollars of N images under a policy (no network call)",
        description="The cost calculator: credits and USD (1 credit ≈ $0.005) for N images, "
        "first choice, expected with escalation, and worst case.",
    )
    add_count(p)
    add_policy(p)
    p.add_argument("--prompt", default="an image", help="a sample prompt (intent matters)")
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="price edits of this image: a local file (checked, not uploaded) or a URL",
    )
    p.add_argument("--resolution", choices=("1K", "2K", "4K"), help="resolution tier")
    p.add_argument("--upscale", action="store_true", help="add a Recraft upscale per image")
    p.add_argument(
        "--remove-background", action="store_true", help="add a Recraft background removal"
    )
    add_config(p)
    add_json(p, "the estimate")
    p.set_defaults(func=run)


def estimate(
    *,
    count: int,
    policy: Any,
    registry: Any,
    config: Any = None,
    prompt: str = "an image",
    images: tuple[str, ...] = (),
    resolution: Any = None,
    upscale: bool = False,
    remove_background: bool = False,
) -> dict[str, Any]:
    """The estimate ``kierouter cost --json`` prints (credits and USD, per image and total)."""
    from functools import partial

    from kierouter._errors import ValidationError
    from kierouter._explain import explain
    from kierouter._input_fit import fit_plan
    from kierouter._models import ImageRequest
    from kierouter.policy import USD_PER_CREDIT, resolve_policy

    if count < 1:
        raise ValidationError("count", f"{count} is not a positive number of images")
    stages: list[tuple[str, ImageRequest, Any]] = [
        ("generate", ImageRequest(prompt=prompt, images=images, resolution=resolution), policy)
    ]
    if upscale:
        stages.append(("upscale", ImageRequest(task="upscale", images=(_SAMPLE_IMAGE,)), "utility"))
    if remove_background:
        stages.append(
            (
                "remove-background",
                ImageRequest(task="remove-background", images=(_SAMPLE_IMAGE,)),
                "utility",
            )
        )
    steps: list[dict[str, Any]] = []
    for stage, request, stage_policy in stages:
        # local --image files are checked (models too small for them left out), never uploaded
        plan = fit_plan(
            request,
            resolve_policy(stage_policy, registry=registry, config=config),
            getattr(registry, "cards", {}),
            partial(explain, request, registry=registry, config=config),
        )
        if not plan.steps:
            from kierouter._errors import ConfigurationError

            raise ConfigurationError(no_plan_message(plan, f"the {stage} step"))
        steps.append(
            {
                "step": stage,
                "policy": plan.policy,
                "model": plan.steps[0].model,
                "credits": plan.steps[0].credits,
                "expected_credits": round(plan.credits_per_accepted, 6),
                "worst_case_credits": plan.worst_case_credits,
                "p_success": round(plan.p_success, 6),
                "plan": list(plan.models),
            }
        )
    per_image = {
        key: round(sum(s[key] for s in steps), 6)
        for key in ("credits", "expected_credits", "worst_case_credits")
    }
    total = {key: round(value * count, 6) for key, value in per_image.items()}
    usd = {
        key.replace("credits", "usd"): round(value * USD_PER_CREDIT, 6)
        for key, value in total.items()
    }
    return {
        "policy": steps[0]["policy"],
        "count": count,
        "usd_per_credit": USD_PER_CREDIT,
        "steps": steps,
        "per_image": per_image,
        "total": {**total, **usd},
    }


def run(args: argparse.Namespace) -> int:
    """Print the estimate."""
    from kierouter._config import load_config

    from ._common import registry_from_env
    from .explain import plan_policy

    config = load_config(args.config)
    registry = registry_from_env()
    result = estimate(
        count=args.count,
        policy=plan_policy(args, registry, config),
        registry=registry,
        config=config,
        prompt=args.prompt,
        images=tuple(args.image),
        resolution=args.resolution,
        upscale=args.upscale,
        remove_background=args.remove_background,
    )
    if args.json:
        print_json(result)
        return 0
    out = sys.stdout
    print_table(
        ["step", "first choice", "credits", "expected", "worst case"],
        [
            [
                s["step"],
                s["model"],
                f"{s['credits']:g}",
                f"{s['expected_credits']:.2f}",
                f"{s['worst_case_credits']:g}",
            ]
            for s in result["steps"]
        ],
        optional=("worst case", "expected", "step"),
    )
    t = result["total"]
    per = result["per_image"]
    out.write(
        f"\n{plural(result['count'], 'image')} × {per['credits']:g} = "
        f"{plural(t['credits'], 'credit')} ≈ ${t['usd']:.2f}\n"
        f"expected with escalation: {t['expected_credits']:.2f} credits "
        f"≈ ${t['expected_usd']:.2f}\n"
        f"worst case: {plural(t['worst_case_credits'], 'credit')} ≈ ${t['worst_case_usd']:.2f}\n"
    )
    return 0
