"""Pricing a batch before anything is spent: per-model counts, credits, USD, worst case, time.

Each row (and each pipeline step) is planned with :meth:`kierouter.Router.explain`, which makes
no network call. Rows whose policy is unknown or that no model can run are reported with their
line numbers, like unreadable rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgspec

from kierouter._errors import ConfigurationError, ValidationError
from kierouter._models import ImageRequest
from kierouter.policy import Budget, Constraints, Policy

from ._input import BatchInputError, BatchRow

if TYPE_CHECKING:
    from kierouter._router import Router
    from kierouter.policy import Plan

__all__ = [
    "PIPELINE_POLICIES",
    "USD_PER_CREDIT",
    "BatchPlan",
    "JobPlan",
    "plan_batch",
    "step_policy",
    "step_request",
]

USD_PER_CREDIT = 0.005
"""1 credit ≈ $0.005 (KIE-API.md §3.6)."""

PIPELINE_POLICIES: dict[str, Policy] = {
    "upscale": Policy(
        name="pipeline-upscale",
        description="pipeline step: Recraft crisp upscale",
        constraints=Constraints(task_kinds=("upscale",), allow=("recraft/crisp-upscale",)),
        ladder=("recraft",),
        budget=Budget(max_attempts=2),
    ),
    "remove-background": Policy(
        name="pipeline-remove-background",
        description="pipeline step: Recraft background removal",
        constraints=Constraints(
            task_kinds=("remove-background",), allow=("recraft/remove-background",)
        ),
        ladder=("recraft",),
        budget=Budget(max_attempts=2),
    ),
}
"""The models pipeline steps run on: recraft/crisp-upscale and recraft/remove-background."""

#: Stand-in input of a later pipeline step while planning (the real one is the previous image).
_PLACEHOLDER = "https://example.invalid/previous-step.png"


def step_policy(row: BatchRow, step: str, default: str | None) -> str | Policy | None:
    """The policy a row's step runs under: the row's (or the batch's) for its first step, the
    Recraft pipeline policy for a later upscale or background removal."""
    if step in PIPELINE_POLICIES and (step != row.steps[0] or row.policy is None):
        return PIPELINE_POLICIES[step]
    return row.policy or default


def step_request(row: BatchRow, step: str, previous_url: str | None) -> ImageRequest:
    """The request of one step: the row's own for the first, else the previous image."""
    if step == row.steps[0]:
        return row.request
    return ImageRequest(
        task=step,  # type: ignore[arg-type]
        images=(previous_url or _PLACEHOLDER,),
        seed=row.request.seed,
    )


class JobPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The plan of one job (one row's step)."""

    job_key: str
    row: int
    line: int
    step: str
    policy: str
    models: tuple[str, ...]
    expected_credits: float
    worst_case_credits: float
    expected_creates: float
    latency_p50: float


class BatchPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a batch is expected to cost and take, before anything is spent."""

    rows: int
    jobs: tuple[JobPlan, ...]
    per_model: dict[str, dict[str, float]]
    expected_credits: float
    worst_case_credits: float
    expected_usd: float
    worst_case_usd: float
    expected_creates: float
    create_limit: int
    create_window: float
    eta_seconds: float

    def summary(self) -> dict[str, Any]:
        """The plan without the per-job list (what ``batch plan --json`` prints)."""
        data = msgspec.to_builtins(self)
        data.pop("jobs")
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in data.items()}


def _worst(plan: Plan) -> float:
    return plan.worst_case_credits or sum(s.credits for s in plan.steps)


def _creates(plan: Plan) -> float:
    expected, miss = 0.0, 1.0
    for step in plan.steps:
        expected += miss
        miss *= 1 - step.p_success
    return expected


def plan_batch(
    router: Router,
    rows: list[BatchRow],
    *,
    policy: str | None = None,
    create_limit: int = 20,
    create_window: float = 10.0,
    source: str = "<batch>",
) -> BatchPlan:
    """Plan every row's steps; raise :class:`BatchInputError` (line numbers) for rows that
    cannot run under their policy."""
    jobs: list[JobPlan] = []
    problems: list[tuple[int, str]] = []
    for row in rows:
        for step in row.steps:
            try:
                plan = router.explain(step_request(row, step, None), step_policy(row, step, policy))
            except (ConfigurationError, ValidationError) as exc:
                problems.append((row.line, f"{step}: {exc}"))
                break
            if not plan.steps:
                dropped = "; ".join(f"{d.model}: {d.reason}" for d in plan.dropped[:4])
                problems.append(
                    (row.line, f"{step}: no model can run it under policy {plan.policy!r}"
                     + (f" ({dropped})" if dropped else ""))
                )  # fmt: skip
                break
            jobs.append(
                JobPlan(
                    job_key=row.job_key(step),
                    row=row.index,
                    line=row.line,
                    step=step,
                    policy=plan.policy,
                    models=plan.models,
                    expected_credits=plan.expected_credits,
                    worst_case_credits=_worst(plan),
                    expected_creates=_creates(plan),
                    latency_p50=plan.steps[0].latency_p50,
                )
            )
    if problems:
        raise BatchInputError(source, problems)
    per_model: dict[str, dict[str, float]] = {}
    for job in jobs:
        entry = per_model.setdefault(job.models[0], {"jobs": 0, "expected_credits": 0.0})
        entry["jobs"] += 1
        entry["expected_credits"] += job.expected_credits
    expected = sum(j.expected_credits for j in jobs)
    worst = sum(j.worst_case_credits for j in jobs)
    creates = sum(j.expected_creates for j in jobs)
    # creates go out in windows of create_limit; the last ones then take about one latency
    windows = max(0, math.ceil(creates / create_limit) - 1)
    depth: dict[int, float] = {}
    for job in jobs:
        depth[job.row] = depth.get(job.row, 0.0) + job.latency_p50
    eta = windows * create_window + (max(depth.values()) if depth else 0.0)
    return BatchPlan(
        rows=len(rows),
        jobs=tuple(jobs),
        per_model=dict(sorted(per_model.items())),
        expected_credits=expected,
        worst_case_credits=worst,
        expected_usd=expected * USD_PER_CREDIT,
        worst_case_usd=worst * USD_PER_CREDIT,
        expected_creates=creates,
        create_limit=create_limit,
        create_window=create_window,
        eta_seconds=eta,
    )
