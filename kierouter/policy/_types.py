"""Policy data types: what a policy is and what planning returns.

A :class:`Policy` is data (it loads from TOML): hard constraints, an objective, an escalation
ladder and a budget. :func:`kierouter.policy.plan` turns a request, the registered model cards
and a policy into a :class:`Plan`: the ranked steps to try in order and every model dropped, with
reasons, plus the plan's expected credits and seconds and its probability of success.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from kierouter._errors import ConfigurationError
from kierouter._models import TaskKind

__all__ = [
    "DEFAULT_LADDER",
    "Budget",
    "Constraints",
    "Dropped",
    "Objective",
    "Plan",
    "PlanStep",
    "Policy",
]

DEFAULT_LADDER: tuple[str, ...] = (
    "seedream",
    "nano-banana",
    "flux-kontext|gpt4o-image",
    "midjourney",
)
"""The sheet's escalation order, as family names: Seedream → Nano Banana → Flux Kontext / GPT-4o →
Midjourney. Within the Flux / GPT-4o rung the request decides (text → GPT-4o, edit → Flux).
"""


def _check_finite(
    name: str, value: object, *, low: float | None = None, positive: bool = False
) -> None:
    """Refuse a number that is NaN, infinite or under ``low``. ``None`` passes, and so does a
    value of another type: types are checked where the struct is decoded or registered."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if positive else value >= low
    if not ok:
        bound = "" if low is None else (f" > {low:g}" if positive else f" >= {low:g}")
        raise ConfigurationError(f"{name} must be a finite number{bound}, got {value!r}")


class Constraints(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Hard limits: a model that breaks one is dropped from the plan, with the reason.

    ``allow``/``deny`` hold model ids or family names. ``require`` lists strengths a model must
    have (``text``, ``chinese``, ...) or capabilities it must offer (``seed``,
    ``negative_prompt``, ``mask``). ``language`` is the prompt's ISO code (``None``: the request's
    own ``language`` or the script of its prompt). ``max_credits`` is per image; ``max_latency``
    is p50 seconds.
    """

    task_kinds: tuple[TaskKind, ...] = ()
    require: tuple[str, ...] = ()
    language: str | None = None
    max_credits: float | None = None
    min_quality: float | None = None
    max_latency: float | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_credits", "min_quality", "max_latency"):
            _check_finite(f"constraints.{name}", getattr(self, name), low=0.0)


class Objective(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to rank the models that pass the constraints.

    ``by`` is ``cost``, ``speed``, ``quality`` or ``weighted``. ``cost`` ranks by the credits
    paid per accepted image (a model's credits ÷ the probability that its produced image is
    accepted; failed tasks are free), which is the order of least expected credits; ``weighted``
    combines normalised price (cheaper is better), speed (faster is better) and quality with the
    three weights.
    """

    by: Literal["cost", "speed", "quality", "weighted"] = "cost"
    cost: float = 0.0
    speed: float = 0.0
    quality: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cost", "speed", "quality"):
            _check_finite(f"objective.{name}", getattr(self, name))


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One budget for a whole job, shared by retries and escalations so they never multiply.

    ``max_attempts`` counts every create sent (retries included); ``max_credits`` caps the
    credits spent on the job; ``deadline`` is seconds from the start of the job.
    """

    max_attempts: int = 4
    max_credits: float | None = None
    deadline: float | None = 900.0

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts < 1:
            raise ConfigurationError(f"budget.max_attempts must be at least 1, got {attempts!r}")
        _check_finite("budget.max_credits", self.max_credits, low=0.0)
        _check_finite("budget.deadline", self.deadline, low=0.0, positive=True)


class Policy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A named routing policy: constraints, objective, ladder, budget.

    ``ordering`` decides the order of the plan: ``ladder`` follows ``ladder`` (one model per
    rung, the objective's best, then a second pass over the rungs, ...), ``objective`` ranks
    every eligible model by the objective alone, ``expected-cost`` takes the ladder's models
    and orders them by credits per accepted image, which minimises the expected credits for
    that set under KIE's billing (same floor, same probability of success).
    ``prefer`` lists model ids tried first when eligible; ``options`` are default model options
    merged under the request's (e.g. ``{"midjourney": {"version": "niji6"}}``).
    ``options_by_intent`` adds options when the request shows an intent
    (``{"anime": {"midjourney": {"version": "niji6"}}}``). ``infer`` (the ``auto`` policy) plans
    like the built-in mode matching the request's intent (text, chinese, utility, 4k), with this
    policy's own constraints, budget, preferences and step cap on top.
    ``on_content_policy`` decides whether a flagged prompt stops the job or escalates.
    ``on_timeout`` decides what happens when a task passes its deadline: ``escalate`` (the
    default) goes on to the next step while the late task stays watched (its price held, its
    image kept as an extra if it finishes: such jobs are *hedged* and may pay twice);
    ``wait`` keeps following the task until KIE reports its end (``PollConfig.watch_limit``)
    and never creates another for a timeout.
    """

    name: str
    description: str = ""
    constraints: Constraints = Constraints()
    objective: Objective = Objective()
    ladder: tuple[str, ...] = DEFAULT_LADDER
    ordering: Literal["ladder", "objective", "expected-cost"] = "ladder"
    budget: Budget = Budget()
    prefer: tuple[str, ...] = ()
    options: dict[str, dict[str, object]] = {}
    on_content_policy: Literal["stop", "escalate"] = "escalate"
    max_steps: int = 4
    options_by_intent: dict[str, dict[str, dict[str, object]]] = {}
    infer: bool = False
    on_timeout: Literal["escalate", "wait"] = "escalate"

    def __post_init__(self) -> None:
        steps = self.max_steps
        if isinstance(steps, int) and not isinstance(steps, bool) and steps < 1:
            raise ConfigurationError(f"policy {self.name!r}: max_steps must be at least 1")
        if isinstance(self.on_timeout, str) and self.on_timeout not in ("escalate", "wait"):
            raise ConfigurationError(
                f"policy {self.name!r}: on_timeout must be 'escalate' or 'wait', "
                f"got {self.on_timeout!r}"
            )


class PlanStep(msgspec.Struct, frozen=True, kw_only=True):
    """One model to try, in order, with what is expected of it and why it is here.

    ``p_success`` is the probability that an attempt yields an accepted image; ``p_billed``
    that it is billed (KIE produced an image, accepted or not; a failed task is free), so the
    image is accepted with probability ``p_success / p_billed`` once produced. ``p_reached`` is
    the probability that the job gets to this step (every earlier step ended without an
    accepted image). ``latency_mean`` is the mean of the log-normal latency through the card's
    p50 and p90, in seconds.
    """

    model: str
    family: str
    credits: float
    latency_p50: float
    quality: float
    p_success: float
    reason: str
    p_billed: float = 1.0
    p_reached: float = 1.0
    latency_mean: float = 0.0


class Dropped(msgspec.Struct, frozen=True, kw_only=True):
    """A model left out of the plan, and why."""

    model: str
    reason: str


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """The ranked plan for one request under one policy. Computed with no network call.

    With each step's credits cᵢ, P(billed) bᵢ, P(success) pᵢ, mean latency Lᵢ and
    P(reached) Rᵢ = Π_{j<i}(1−pⱼ): ``expected_credits`` is Σ cᵢ·bᵢ·Rᵢ (KIE bills only tasks
    that produce an image), ``expected_seconds`` is Σ Lᵢ·Rᵢ, ``p_success`` is 1 − Π(1−pᵢ) and
    ``worst_case_credits`` is Σ cᵢ. ``intent`` is what ``auto`` inferred (``edit``, ``text``,
    ``chinese``, ``4k``, ...).
    """

    policy: str
    steps: tuple[PlanStep, ...]
    dropped: tuple[Dropped, ...]
    expected_credits: float
    p_success: float
    intent: tuple[str, ...] = ()
    worst_case_credits: float = 0.0
    expected_seconds: float = 0.0

    @property
    def credits_per_accepted(self) -> float:
        """Expected credits per accepted image, ``expected_credits / p_success`` (∞ when no
        step can succeed): what many jobs under this plan cost per image delivered."""
        return self.expected_credits / self.p_success if self.p_success > 0 else math.inf

    @property
    def models(self) -> tuple[str, ...]:
        """Model ids in the order they will be tried."""
        return tuple(s.model for s in self.steps)

    def card_ids(self) -> tuple[str, ...]:
        """Alias of :attr:`models` for symmetry with :class:`~kierouter.ModelCard`."""
        return self.models
