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
import textwrap
from typing import TYPE_CHECKING, Any

from ._common import plural, print_json, print_table, table_width
from ._options import add_config, add_count, add_json, add_policy, check_models, restrict

if TYPE_CHECKING:
    from kierouter.policy import Plan, Policy

__all__ = ["add_parser", "plan_policy", "print_plan", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``explain`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "explain",
        help="show which models a job would try, in which order, and why (no network call)",
        description="Plan one job without running it: ranked models, dropped models, expected "
        "credits and success.",
    )
    p.add_argument("prompt", help="the prompt (quoted words mean text to render in the image)")
    add_policy(p)
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="reference image: a local file (checked, not uploaded) or a URL; repeatable",
    )
    p.add_argument(
        "--task",
        choices=("generate", "edit", "remove-background", "upscale"),
        help="task kind (default: edit with --image, else generate)",
    )
    p.add_argument("--aspect-ratio", help="e.g. 1:1, 16:9, 9:16")
    p.add_argument("--resolution", choices=("1K", "2K", "4K"), help="resolution tier")
    add_count(p)
    p.add_argument("--seed", type=int, help="seed (models that ignore seeds are marked)")
    p.add_argument("--negative-prompt", help="what the image must not show (models that take it)")
    p.add_argument("--language", help="prompt language, ISO code (default: from the script)")
    add_config(p)
    add_json(p, "the plan")
    p.set_defaults(func=run)


def plan_policy(args: argparse.Namespace, registry: Any, config: Any) -> Policy:
    """The policy ``--policy``, ``--model`` and ``--max-credits`` describe."""
    from kierouter.policy import resolve_policy

    name = args.policy or config.defaults.policy
    return restrict(
        resolve_policy(name, registry=registry, config=config),
        models=check_models(args.models, registry),
        max_credits=args.max_credits,
    )


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
            optional=("family", "mean s", "quality", "p50 s", "reached", "billed", "ok", "#"),
        )
    else:
        out.write("no model can run this request under this policy\n")
    usd = plan.expected_credits * USD_PER_CREDIT
    footer = (
        f"expected credits {plan.expected_credits:.2f} a job (≈ ${usd:.4f}), "
        f"{plan.credits_per_accepted:.2f} per accepted image",
        f"expected time {plan.expected_seconds:.0f} s; P(success) {plan.p_success:.3f}; "
        f"worst case {plural(plan.worst_case_credits, 'credit')}",
        "billed: KIE produces an image and charges for it (a failed task is free)",
        "ok: the image is accepted; reached: the job gets to this step",
    )
    width = table_width()
    out.write("\n")
    for line in footer:
        out.write((textwrap.fill(line, width) if width else line) + "\n")
    if plan.dropped:
        out.write("\ndropped:\n")
        print_table(["model", "why"], [[d.model, d.reason] for d in plan.dropped])


def run(args: argparse.Namespace) -> int:
    """Plan the job; print it."""
    from kierouter._config import load_config
    from kierouter._explain import explain
    from kierouter._input_fit import fit_plan
    from kierouter.policy import plan_json

    from ._common import registry_from_env, request_from_args

    config = load_config(args.config)
    registry = registry_from_env()
    request = request_from_args(args)
    # local --image files are checked (models too small for them left out), never uploaded
    plan = fit_plan(
        request,
        plan_policy(args, registry, config),
        registry.cards,
        lambda p: explain(request, p, registry=registry, config=config),
    )
    if args.json:
        print_json(plan_json(plan))
    else:
        print_plan(plan)
    return 0
