"""From a caller's arguments to what a job runs: the request, the policy, the plan, the judge.
No network. Strictly private."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError, ValidationError
from ._input_fit import fit_plan
from ._inputs import has_local_inputs
from ._models import ImageRequest

if TYPE_CHECKING:
    from ._plugins import Registry
    from .judging import Judge
    from .policy import Plan, Policy

__all__ = ["Planner", "apply_config_pricing", "check_job_key", "new_outcome_stats"]

_JOB_KEY = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,200}$")


def as_request(request: ImageRequest | str) -> ImageRequest:
    if isinstance(request, str):
        return ImageRequest(prompt=request)
    if not isinstance(request, ImageRequest):
        raise ValidationError("request", f"expected an ImageRequest or a prompt, got {request!r}")
    return request


def check_job_key(job_key: str | None) -> str:
    if job_key is None:
        return f"job-{secrets.token_hex(8)}"
    if not isinstance(job_key, str) or not _JOB_KEY.match(job_key):
        raise ValidationError(
            "job_key", "must be 1–200 characters without slashes or control characters"
        )
    return job_key


class Planner:
    """Plans jobs for one router: its registry, configuration and learned outcomes."""

    def __init__(self, registry: Registry, config: Any, stats: Any) -> None:
        self.registry = registry
        self.config = config
        self.stats = stats

    def __repr__(self) -> str:
        return f"<Planner {len(self.registry.cards)} models>"

    def resolve_policy(self, policy: str | Policy) -> Policy:
        """A policy by name (configuration, plugins, built-ins) or as given."""
        resolved: Policy = policy_engine().resolve_policy(
            policy, registry=self.registry, config=self.config
        )
        return resolved

    def prepare(
        self, request: ImageRequest | str, policy: str | Policy, *, check_inputs: bool = True
    ) -> tuple[ImageRequest, Policy, Plan]:
        """The validated request (with the policy's options), the policy and the plan.

        With ``check_inputs`` the request's local input files are checked now (nothing sent) and
        the models they are too big for are left out of the plan (:func:`~._input_fit.fit_plan`).
        A resumed job skips that: its paid task is collected even if a file is gone since.
        """
        engine = policy_engine()
        req = as_request(request).validate()
        resolved = self.resolve_policy(policy)
        req = engine.apply_policy_options(req, resolved)

        def plan_with(chosen: Policy) -> Plan:
            made: Plan = engine.plan(req, self.registry.cards, chosen, stats=self.stats)
            return made

        if check_inputs and has_local_inputs(req):
            return req, resolved, fit_plan(req, resolved, self.registry.cards, plan_with)
        return req, resolved, plan_with(resolved)

    def resolve_judge(self, judge: Judge | str) -> Judge:
        """A judge by name (plugins, then built-ins) or a callable."""
        if isinstance(judge, str):
            found = self.registry.judges.get(judge)
            if found is not None:
                return found
            from .judging import BUILTIN_JUDGES

            if judge in BUILTIN_JUDGES:
                return BUILTIN_JUDGES[judge]
            known = sorted({*self.registry.judges, *BUILTIN_JUDGES})
            raise ConfigurationError(f"unknown judge {judge!r}; known judges: {', '.join(known)}")
        if not callable(judge):
            raise ConfigurationError(f"judge must be a callable or a name, got {judge!r}")
        return judge


def apply_config_pricing(registry: Registry, config: Any) -> None:
    """Apply ``[pricing]`` overrides from a loaded configuration, when it has some."""
    pricing = getattr(config, "pricing", None)
    if pricing:
        known = {k: v for k, v in dict(pricing).items() if k in registry.cards}
        registry.with_pricing(known)


_POLICY_ENGINE: Any = None


def policy_engine() -> Any:
    # Imported on first use: kierouter.policy stays out of `import kierouter`'s path. Kept once
    # found: each job asks for it three times.
    global _POLICY_ENGINE
    if _POLICY_ENGINE is None:
        from . import policy

        _POLICY_ENGINE = policy
    return _POLICY_ENGINE


def new_outcome_stats() -> Any:
    factory = getattr(policy_engine(), "OutcomeStats", None)
    return factory() if factory is not None else None
