"""Routing policies: pick models by cost, speed, quality and language, and explain the choice.

* :func:`plan` turns a request, the model cards and a :class:`Policy` into a :class:`Plan`;
* :func:`plan_json` is a plan as ``kierouter explain --json`` prints it (:func:`kierouter.explain`
  plans with the installed plugins, from above this package);
* :func:`resolve_policy` finds a policy by name (configuration > plugins > built-ins);
* :func:`builtin_policies` are the sheet's use-case modes plus ``auto``;
* :class:`OutcomeStats` learns from outcomes how often each model is billed and accepted, per
  model and intent.
"""

from __future__ import annotations

from ._builtin import BUILTIN_POLICIES, builtin_policies
from ._expected import expected_credits, p_success, worst_case_credits
from ._explain import USD_PER_CREDIT, plan_json
from ._intent import infer_intent, prompt_language
from ._learning import OutcomeStats
from ._planner import apply_policy_options, effective_policy, merge_constraints, plan
from ._resolve import known_policies, resolve_policy
from ._types import DEFAULT_LADDER, Budget, Constraints, Dropped, Objective, Plan, PlanStep, Policy

__all__ = [
    "BUILTIN_POLICIES",
    "DEFAULT_LADDER",
    "USD_PER_CREDIT",
    "Budget",
    "Constraints",
    "Dropped",
    "Objective",
    "OutcomeStats",
    "Plan",
    "PlanStep",
    "Policy",
    "apply_policy_options",
    "builtin_policies",
    "effective_policy",
    "expected_credits",
    "infer_intent",
    "known_policies",
    "merge_constraints",
    "p_success",
    "plan",
    "plan_json",
    "prompt_language",
    "resolve_policy",
    "worst_case_credits",
]
