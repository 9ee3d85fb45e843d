"""Find a policy by name: user configuration, then plugins, then the built-ins."""

from __future__ import annotations

from typing import Any

from kierouter._errors import ConfigurationError

from ._builtin import BUILTIN_POLICIES
from ._types import Policy

__all__ = ["known_policies", "resolve_policy"]


def known_policies(*, registry: Any = None, config: Any = None) -> list[str]:
    """Every policy name that :func:`resolve_policy` accepts, sorted."""
    names = set(BUILTIN_POLICIES)
    names.update(getattr(registry, "policies", None) or {})
    names.update(getattr(config, "policies", None) or {})
    return sorted(names)


def resolve_policy(policy: str | Policy, *, registry: Any = None, config: Any = None) -> Policy:
    """The :class:`Policy` for ``policy``: a Policy is returned as is; a name is looked up in
    the user's configuration (``[policies.NAME]``), then the policies plugins registered, then
    the built-ins. An unknown name raises :class:`~kierouter.ConfigurationError` listing the
    known ones.
    """
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, str) or not policy:
        raise ConfigurationError(f"a policy is a name or a Policy, not {policy!r}")
    if config is not None and policy in (getattr(config, "policies", None) or {}):
        resolved: Policy = config.policy(policy, registry=registry)
        return resolved
    registered = getattr(registry, "policies", None) or {}
    found = registered.get(policy)
    if isinstance(found, Policy):
        return found
    builtin = BUILTIN_POLICIES.get(policy)
    if builtin is not None:
        return builtin
    known = ", ".join(known_policies(registry=registry, config=config))
    raise ConfigurationError(f"unknown policy {policy!r}; known policies: {known}")
