"""The hooks a kierouter plugin may implement.

A plugin is a module (or object) found through the ``kierouter`` entry-point group, with
functions decorated by :data:`hookimpl`. Hooks are synchronous, cheap and do no I/O: they only
*register* things through the ``register`` callback they are given, so that the core knows which
plugin registered what and can reject duplicates with a message naming both plugins.

pluggy passes only the arguments an implementation asks for, so hooks can grow arguments later
without breaking existing plugins.

Example::

    from kierouter import hookimpl

    @hookimpl
    def kierouter_register_models(register):
        register(MY_CARD, MyProvider())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from ._models import Event, ModelCard
    from .judging import Judge
    from .policy import Policy
    from .provider import Provider

__all__ = [
    "PROJECT",
    "RegisterEventSink",
    "RegisterJudge",
    "RegisterModel",
    "RegisterPolicy",
    "hookimpl",
    "hookspec",
    "kierouter_register_event_sinks",
    "kierouter_register_judges",
    "kierouter_register_models",
    "kierouter_register_policies",
]

PROJECT = "kierouter"
"""pluggy project name and entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Decorator marking kierouter's hook specifications (used in this module only)."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator for plugin hook implementations (``@hookimpl`` above ``kierouter_register_models``)."""


class RegisterModel(Protocol):
    """``register(card, provider)``: add a model and the provider that speaks its API."""

    def __call__(self, card: ModelCard, provider: Provider) -> None: ...


class RegisterPolicy(Protocol):
    """``register(policy)``: add a named routing policy."""

    def __call__(self, policy: Policy) -> None: ...


class RegisterJudge(Protocol):
    """``register(name, judge)``: add a named judge that accepts or rejects finished results."""

    def __call__(self, name: str, judge: Judge) -> None: ...


class RegisterEventSink(Protocol):
    """``register(name, sink)``: add a callable that receives every :class:`~kierouter.Event`."""

    def __call__(self, name: str, sink: Callable[[Event], None]) -> None: ...


@hookspec
def kierouter_register_models(register: RegisterModel) -> None:
    """Register models: call ``register(card, provider)`` once per model.

    ``card`` is a :class:`~kierouter.ModelCard` whose ``id`` is KIE's model id; ``provider`` is a
    :class:`~kierouter.provider.Provider` that builds its create calls and parses its answers.
    The card is checked (field types, ranges, finite numbers; see the hook reference) and a bad
    one is refused by id and recorded as the plugin's error. A model id registered by two
    plugins is kept by the first loaded (in-process plugins in the order given, then entry
    points by name); the second registration is recorded as that plugin's error.
    """


@hookspec
def kierouter_register_policies(register: RegisterPolicy) -> None:
    """Register routing policies: call ``register(policy)`` with a :class:`~kierouter.Policy`."""


@hookspec
def kierouter_register_judges(register: RegisterJudge) -> None:
    """Register judges: call ``register(name, judge)``; select one with ``judge="name"``."""


@hookspec
def kierouter_register_event_sinks(register: RegisterEventSink) -> None:
    """Register event sinks: call ``register(name, sink)``; every sink sees every event."""
