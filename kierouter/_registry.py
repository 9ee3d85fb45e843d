"""What the loaded plugins registered, and who registered it.

Each hook implementation gets a ``register`` callback bound to its plugin (see
:mod:`kierouter._plugins`), so the registry knows who registered what, rejects duplicates naming
both plugins, and records (rather than raises) a registration it refuses: a card that breaks the
documented rules (:mod:`kierouter._card_check`), a policy of the wrong shape, a provider that is
not a :class:`~kierouter.Provider`. The planner only ever sees checked cards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ._card_check import CardError, check_card, check_struct
from ._errors import ConfigurationError, PluginError
from ._models import ModelCard, Pricing

if TYPE_CHECKING:
    from ._models import Event
    from .judging import Judge
    from .policy import Policy
    from .provider import Provider

__all__ = ["SLOW_LOAD_MS", "PluginRecord", "Registry", "priced"]

log = logging.getLogger("kierouter.plugins")

SLOW_LOAD_MS = 100.0
"""A plugin taking longer than this to import and register is flagged by ``kierouter plugins``:
every command and every ``Router()`` pays that time again."""


class PluginRecord(msgspec.Struct, kw_only=True):
    """What one plugin is and what it registered; ``errors`` lists what went wrong, if anything.

    ``load_ms`` is the time the plugin took to import (entry points) and to run its hooks.
    ``tracebacks`` holds the formatted traceback of each exception the plugin's own code
    raised (at import or in a hook), for ``kierouter plugins --json`` and ``-v``.
    """

    name: str
    version: str | None = None
    source: str = "entry point"
    models: list[str] = []
    policies: list[str] = []
    judges: list[str] = []
    event_sinks: list[str] = []
    errors: list[str] = []
    tracebacks: list[str] = []
    load_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the plugin loaded and every hook call succeeded."""
        return not self.errors

    @property
    def slow(self) -> bool:
        """True when loading the plugin took longer than :data:`SLOW_LOAD_MS`."""
        return self.load_ms > SLOW_LOAD_MS

    def fail(self, message: str, exc: BaseException | None = None) -> None:
        """Record an error (and the traceback of ``exc``), and log it as a warning.

        The log record carries the traceback when INFO is enabled (``kierouter -v``).
        """
        self.errors.append(message)
        trace = ""
        if exc is not None:
            self.tracebacks.append(_plugin_traceback(exc))
            if log.isEnabledFor(logging.INFO):
                trace = "\n" + self.tracebacks[-1].rstrip()
        log.warning("plugin %r: %s%s", self.name, message, trace)


def _plugin_traceback(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` from the plugin's first frame on: the host's and the
    import machinery's frames above it say nothing to the plugin's author."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _host_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _host_frame(filename: str) -> bool:
    return filename == _PLUGINS_FILE or filename.startswith("<frozen") or "importlib" in filename


_PLUGINS_FILE = os.path.join(os.path.dirname(__file__), "_plugins.py")


def priced(card: ModelCard, pricing: Pricing) -> ModelCard:
    """``card`` with the user's ``[prices."<id>"]``, checked by the card rules;
    :class:`~kierouter.ConfigurationError` naming the table when they refuse it."""
    try:
        return check_card(msgspec.structs.replace(card, pricing=pricing))
    except CardError as exc:
        raise ConfigurationError(f'prices."{card.id}": {exc}') from None


class Registry:
    """Every model, provider, policy, judge and event sink the loaded plugins registered."""

    def __init__(self) -> None:
        self.cards: dict[str, ModelCard] = {}
        self.providers: dict[str, Provider] = {}
        self.policies: dict[str, Policy] = {}
        self.judges: dict[str, Judge] = {}
        self.event_sinks: dict[str, Callable[[Event], None]] = {}
        self.plugins: list[PluginRecord] = []
        self._owner: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return (
            f"<Registry {len(self.plugins)} plugins, {len(self.cards)} models, "
            f"{len(self.policies)} policies>"
        )

    # -- lookups -----------------------------------------------------------------------------

    def card(self, model_id: str) -> ModelCard:
        """The card of ``model_id``; ConfigurationError naming the known ids if there is none."""
        try:
            return self.cards[model_id]
        except KeyError:
            known = ", ".join(sorted(self.cards)) or "none (no plugin registered a model)"
            raise ConfigurationError(f"unknown model {model_id!r}; known models: {known}") from None

    def provider(self, model_id: str) -> Provider:
        """The provider registered with ``model_id``."""
        self.card(model_id)
        return self.providers[model_id]

    def owner(self, kind: str, name: str) -> str | None:
        """The plugin that registered ``name`` of ``kind`` (``model``, ``policy``, ...)."""
        return self._owner.get((kind, name))

    def with_pricing(self, overrides: dict[str, Pricing]) -> None:
        """Replace model prices (user configuration wins over plugin defaults).

        A price the card rules refuse (negative, NaN, an unknown resolution tier) raises
        :class:`~kierouter.ConfigurationError` naming ``prices."<model>"``.
        """
        for model_id, pricing in overrides.items():
            self.cards[model_id] = priced(self.card(model_id), pricing)

    # -- registration ------------------------------------------------------------------------

    def _claim(self, kind: str, name: str, record: PluginRecord) -> None:
        previous = self._owner.get((kind, name))
        if previous is not None:
            raise PluginError(
                record.name,
                f"{kind} {name!r} is already registered by plugin {previous!r}; "
                f"the one from {record.name!r} was ignored",
            )
        self._owner[(kind, name)] = record.name

    def _register_model(self, record: PluginRecord, card: Any, provider: Any) -> None:
        from .provider import Provider

        if not isinstance(card, ModelCard):
            raise PluginError(record.name, f"register() got {type(card).__name__}, not a ModelCard")
        try:
            checked = check_card(card)
        except CardError as exc:
            raise PluginError(record.name, f"model {card.id!r} refused: {exc}") from None
        if not isinstance(provider, Provider):
            raise PluginError(
                record.name,
                f"model {card.id!r} was registered with {type(provider).__name__}, "
                "not a kierouter.provider.Provider",
            )
        self._claim("model", checked.id, record)
        self.cards[checked.id] = msgspec.structs.replace(checked, plugin=record.name)
        self.providers[checked.id] = provider
        record.models.append(checked.id)

    def _register_policy(self, record: PluginRecord, policy: Any) -> None:
        from .policy import Policy

        if not isinstance(policy, Policy):
            raise PluginError(record.name, f"register() got {type(policy).__name__}, not a Policy")
        try:
            checked = check_struct(policy, Policy)
        except CardError as exc:
            raise PluginError(record.name, f"policy {policy.name!r} refused: {exc}") from None
        if not checked.name.strip():
            raise PluginError(record.name, "a policy needs a non-empty name")
        self._claim("policy", checked.name, record)
        self.policies[checked.name] = checked
        record.policies.append(checked.name)

    def _register_judge(self, record: PluginRecord, name: Any, judge: Any) -> None:
        if not isinstance(name, str) or not callable(judge):
            raise PluginError(record.name, "register(name, judge) needs a str and a callable")
        self._claim("judge", name, record)
        self.judges[name] = judge
        record.judges.append(name)

    def _register_sink(self, record: PluginRecord, name: Any, sink: Any) -> None:
        if not isinstance(name, str) or not callable(sink):
            raise PluginError(record.name, "register(name, sink) needs a str and a callable")
        self._claim("event sink", name, record)
        self.event_sinks[name] = sink
        record.event_sinks.append(name)

    def register_callback(self, hook: str, record: PluginRecord) -> Callable[..., None]:
        """The ``register`` callback handed to ``record``'s implementation of ``hook``.

        Strictly private to the plugin host: what it refuses is recorded on ``record``.
        """
        targets: dict[str, Callable[..., None]] = {
            "kierouter_register_models": self._register_model,
            "kierouter_register_policies": self._register_policy,
            "kierouter_register_judges": self._register_judge,
            "kierouter_register_event_sinks": self._register_sink,
        }
        target = targets[hook]

        def register(*args: Any) -> None:
            try:
                target(record, *args)
            except PluginError as exc:
                record.errors.append(exc.message)
                log.warning("%s", exc.message)
            except TypeError as exc:
                record.fail(f"{hook}: bad register() call: {exc}")

        return register
