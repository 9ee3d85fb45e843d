"""``auto`` with any plugin: when nothing it prefers fits, plan over every installed model.

``auto`` (any policy with ``infer=True``) plans like the built-in mode for the request's intent,
along the default ladder of the shipped families. A model from a family that is not on that
ladder (a third-party plugin's) would never be planned, so with only such plugins installed
``auto`` would plan nothing at all. When the inferred mode and its ladder keep no model, the
planner tries again with :func:`any_model_policy`: every installed model, ranked by the policy's
objective, under the policy's own constraints (its caps, allow/deny lists, required traits) and
the request's needs; the mode's preferences (its ladder, a required strength) are dropped.
"""

from __future__ import annotations

import msgspec

from ._types import Plan, Policy

__all__ = ["any_model_policy", "widened"]

_WIDE: dict[int, tuple[Policy, Policy]] = {}


def any_model_policy(policy: Policy) -> Policy:
    """``policy`` ranking every model by its objective, without a ladder or an inferred mode.

    Remembered per policy, so that the planner's per-policy caches keep working.
    """
    found = _WIDE.get(id(policy))
    if found is not None and found[0] is policy:
        return found[1]
    wide = msgspec.structs.replace(policy, ordering="objective", infer=False)
    if len(_WIDE) > 64:
        _WIDE.clear()
    _WIDE[id(policy)] = (policy, wide)
    return wide


def widened(result: Plan) -> Plan:
    """``result`` (planned by :func:`any_model_policy`) with each step saying why it is there."""
    note = "nothing auto prefers for this request fits, so every installed model was ranked; "
    steps = tuple(msgspec.structs.replace(s, reason=note + s.reason) for s in result.steps)
    return msgspec.structs.replace(result, steps=steps)
