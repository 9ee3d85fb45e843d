"""``kierouter explain PROMPT``: the plan a job would follow, with reasons; no network call.

Shows each planned model with its credits, quality, latency (p50 and mean), the probabilities
that an attempt on it is billed (KIE produced an image), yields an accepted image, and is reached
at all, and why it is there; every model left out and why; and the plan's expected credits (a
job, and per accepted image), expected seconds and probability of success. ``--json`` prints
``policy``, ``intent``, ``plan``, ``dropped``, ``expected_credits``, ``expected_usd``,
``credits_per_accepted``, ``expected_seconds``, ``p_success`` and ``worst_case_credits``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ._common import print_json, print_table

if TYPE_CHECKING:
    from kierouter.policy import Plan, Policy

__all__ = ["add_parser", "policy_with_cap", "print_plan", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``explain`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "explain",
        help="show which models a job would try, in which order, and why (no network call)",
        description="Plan one job without running it: ranked models, dropped models, expected "
        "credits and success.",
    )
    p.add_argument("prompt", help="the prompt (quoted words mean text to render in the image)")
    p.add_argument("--policy", help="routing policy (default: [defaults] policy, else auto)")
    p.add_argument(
        "--image", action="append", default=[], metavar="URL", help="reference image (repeatable)"
    )
    p.add_argument(
        "--task",
        choices=("generate", "edit", "remove-background", "upscale"),
        help="task kind (default: edit with --image, else generate)",
    )
    p.add_argument("--max-credits", type=float, metavar="N", help="at most N credits an image")
    p.add_argument("--aspect-ratio", help="e.g. 1:1, 16:9, 9:16")
    p.add_argument("--resolution", choices=("1K", "2K", "4K"), help="resolution tier")
    p.add_argument("--count", type=int, default=1, help="number of images (default 1)")
    p.add_argument("--seed", type=int, help="seed (models that ignore seeds are marked)")
    p.add_argument("--negative-prompt", help="what the image must not show (models that take it)")
    p.add_argument("--language", help="prompt language, ISO code (default: from the script)")
    p.add_argument("--config", metavar="FILE", help="kierouter TOML configuration")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=run)


def policy_with_cap(policy: Policy, max_credits: float | None) -> Policy:
    """``policy`` with ``max_credits`` per image added to its constraints (the lower cap wins)."""
    if max_credits is None:
        return policy
    import msgspec

    from kierouter.policy import Constraints, merge_constraints

    if max_credits <= 0:
        from kierouter._errors import ValidationError

        raise ValidationError("max_credits", f"{max_credits:g} is not a positive number")
    constraints = merge_constraints(policy.constraints, Constraints(max_credits=max_credits))
    return msgspec.structs.replace(policy, constraints=constraints)


def print_plan(plan: Plan) -> None:
    """The plan as a human-readable table, its expected credits and time, then the dropped
    models."""
    from kierouter.policy import USD_PER_CREDIT

    out = sys.stdout
    out.write(f"policy {plan.policy} · intent {', '.join(plan.intent)}\n\n")
    if plan.steps:
        print_table(
            [
                *("#", "model", "family", "credits", "quality", "p50 s", "mean s"),
                *("billed", "ok", "reached", "why"),
            ],
            [
                [
                    n,
                    s.model,
                    s.family,
                    f"{s.credits:g}",
                    f"{s.quality:g}",
                    f"{s.latency_p50:g}",
                    f"{s.latency_mean:.0f}",
                    f"{s.p_billed:.2f}",
                    f"{s.p_success:.2f}",
                    f"{s.p_reached:.3g}",
                    s.reason,
                ]
                for n, s in enumerate(plan.steps, 1)
            ],
        )
    else:
        out.write("no model can run this request under this policy\n")
    usd = plan.expected_credits * USD_PER_CREDIT
    out.write(
        f"\nexpected credits {plan.expected_credits:.2f} a job (≈ ${usd:.4f}), "
        f"{plan.credits_per_accepted:.2f} per accepted image; "
        f"expected time {plan.expected_seconds:.0f} s\n"
        f"P(success) {plan.p_success:.3f}; worst case {plan.worst_case_credits:g} credits\n"
        "billed: KIE produces an image and charges for it (a failed task is free); "
        "ok: the image is accepted; reached: the job gets to this step; "
        "mean s: mean latency\n"
    )
    if plan.dropped:
        out.write("\ndropped:\n")
        width = max(len(d.model) for d in plan.dropped)
        for d in plan.dropped:
            out.write(f"  {d.model.ljust(width)}  {d.reason}\n")


def run(args: argparse.Namespace) -> int:
    """Plan the job; print it."""
    from kierouter._config import load_config
    from kierouter.policy import explain, plan_json, resolve_policy

    from ._common import registry_from_env, request_from_args

    config = load_config(args.config)
    registry = registry_from_env()
    request = request_from_args(args)
    name = args.policy or config.defaults.policy
    policy = policy_with_cap(
        resolve_policy(name, registry=registry, config=config), args.max_credits
    )
    plan = explain(request, policy, registry=registry, config=config)
    if args.json:
        print_json(plan_json(plan))
    else:
        print_plan(plan)
    return 0
