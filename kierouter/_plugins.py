"""The plugin host: find plugins, call their hooks in isolation, and keep what they registered.

Each hook implementation is called on its own with a ``register`` callback bound to its plugin,
so the registry knows who registered what, rejects duplicates naming both plugins, and records
(rather than raises) a plugin that fails to import, raises in a hook or registers garbage.

Environment switches, read when plugins are loaded from entry points:

``KIEROUTER_LOAD_PLUGINS``
    Comma-separated allow-list of plugin names. Set but empty: load no entry-point plugins.
``KIEROUTER_DISABLE_PLUGINS``
    Comma-separated block-list of plugin names.
``KIEROUTER_TRACE_PLUGINS``
    Any non-empty value logs every hook call on the ``kierouter.plugins`` logger at INFO.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import pluggy

from . import hookspecs
from ._errors import ConfigurationError, PluginError
from ._models import ModelCard, Pricing

if TYPE_CHECKING:
    from ._models import Event
    from .judging import Judge
    from .policy import Policy
    from .provider import Provider

__all__ = ["PluginRecord", "Registry", "load_registry"]

log = logging.getLogger("kierouter.plugins")

_HOOKS = (
    "kierouter_register_models",
    "kierouter_register_policies",
    "kierouter_register_judges",
    "kierouter_register_event_sinks",
)


class PluginRecord(msgspec.Struct, kw_only=True):
    """What one plugin is and what it registered; ``errors`` lists what went wrong, if anything."""

    name: str
    version: str | None = None
    source: str = "entry point"
    models: list[str] = []
    policies: list[str] = []
    judges: list[str] = []
    event_sinks: list[str] = []
    errors: list[str] = []

    @property
    def ok(self) -> bool:
        """True when the plugin loaded and every hook call succeeded."""
        return not self.errors


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
        """Replace model prices (user configuration wins over plugin defaults)."""
        for model_id, pricing in overrides.items():
            self.cards[model_id] = msgspec.structs.replace(self.card(model_id), pricing=pricing)

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
        if not isinstance(provider, Provider):
            raise PluginError(
                record.name,
                f"model {card.id!r} was registered with {type(provider).__name__}, "
                "not a kierouter.provider.Provider",
            )
        self._claim("model", card.id, record)
        self.cards[card.id] = msgspec.structs.replace(card, plugin=record.name)
        self.providers[card.id] = provider
        record.models.append(card.id)

    def _register_policy(self, record: PluginRecord, policy: Any) -> None:
        from .policy import Policy

        if not isinstance(policy, Policy):
            raise PluginError(record.name, f"register() got {type(policy).__name__}, not a Policy")
        self._claim("policy", policy.name, record)
        self.policies[policy.name] = policy
        record.policies.append(policy.name)

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

    def _register_fn(self, hook: str, record: PluginRecord) -> Callable[..., None]:
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
                message = f"{hook}: bad register() call: {exc}"
                record.errors.append(message)
                log.warning("plugin %r: %s", record.name, message)

        return register


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_point_plugins(records: list[PluginRecord]) -> Iterator[tuple[PluginRecord, object]]:
    from importlib_metadata import entry_points

    allow = _env_list("KIEROUTER_LOAD_PLUGINS")
    deny = _env_list("KIEROUTER_DISABLE_PLUGINS") or set()
    for ep in entry_points(group=hookspecs.PROJECT):
        if (allow is not None and ep.name not in allow) or ep.name in deny:
            continue
        version = ep.dist.version if ep.dist is not None else None
        record = PluginRecord(name=ep.name, version=version, source=f"entry point {ep.value}")
        records.append(record)
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:  # sys.exit() at import must not end the host
            record.errors.append(f"failed to import: {type(exc).__name__}: {exc}")
            log.warning("plugin %r failed to import: %s", ep.name, exc)
            continue
        yield record, module


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) else type(plugin).__name__


def load_registry(
    plugins: Iterable[object] = (),
    *,
    entry_points: bool = True,
) -> Registry:
    """Load plugins and return what they registered.

    ``plugins`` are plugin objects (modules or instances with hook functions) registered
    in-process, before entry-point plugins; ``entry_points=False`` loads only those, which is how
    tests build routers that do not depend on what is installed.
    """
    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    trace = bool(os.environ.get("KIEROUTER_TRACE_PLUGINS"))
    loaded: list[tuple[PluginRecord, object]] = []
    for plugin in plugins:
        record = PluginRecord(name=_plugin_name(plugin), source="in-process")
        registry.plugins.append(record)
        loaded.append((record, plugin))
    if entry_points:
        loaded.extend(_entry_point_plugins(registry.plugins))
    for record, plugin in loaded:
        try:
            pm.register(plugin, name=f"{record.name}#{id(plugin)}")
        except Exception as exc:
            record.errors.append(f"not a valid plugin: {type(exc).__name__}: {exc}")
            log.warning("plugin %r is not valid: %s", record.name, exc)
            continue
        _call_hooks(pm, plugin, record, registry, trace)
    return registry


def _call_hooks(
    pm: pluggy.PluginManager,
    plugin: object,
    record: PluginRecord,
    registry: Registry,
    trace: bool,
) -> None:
    for hook_name in _HOOKS:
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            register = registry._register_fn(hook_name, record)
            kwargs = {"register": register}
            if trace:
                log.info("calling %s of plugin %r", hook_name, record.name)
            try:
                function: Callable[..., object] = impl.function
                returned = function(*(kwargs[arg] for arg in impl.argnames))
            except (Exception, SystemExit) as exc:
                message = f"{hook_name} raised {type(exc).__name__}: {exc}"
                record.errors.append(message)
                log.warning("plugin %r: %s", record.name, message)
                continue
            if returned is not None:
                message = (
                    f"{hook_name} returned {type(returned).__name__}, which is ignored: "
                    "hooks register things by calling register(...) and return None"
                )
                record.errors.append(message)
                log.warning("plugin %r: %s", record.name, message)
