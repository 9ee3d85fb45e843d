"""The plugin host: find plugins, check and call their hooks in isolation, time them.

Each plugin is registered with pluggy (which checks every hook implementation's arguments
against :mod:`kierouter.hookspecs`), then checked for hooks that would silently never run: an
unknown ``kierouter_*`` name (a misspelling, named with the nearest real hook) or a hook function
missing its ``@hookimpl``. Each hook is then called on its own with a ``register`` callback bound
to its plugin (:class:`~kierouter.Registry`). A plugin that fails to import, raises in a hook or
registers garbage is recorded on its :class:`~kierouter.PluginRecord`, with the traceback, and
the other plugins load normally.

Environment switches, read when plugins are loaded from entry points:

``KIEROUTER_LOAD_PLUGINS``
    Comma-separated allow-list of plugin names. Set but empty: load no entry-point plugins.
``KIEROUTER_DISABLE_PLUGINS``
    Comma-separated block-list of plugin names.
``KIEROUTER_TRACE_PLUGINS``
    Any non-empty value logs every import and hook call, with its duration, on the
    ``kierouter.plugins`` logger at INFO (``kierouter -v``); they are always logged at DEBUG.

A name in either list that no installed plugin has is reported as an error record of its own,
listing the installed names. Entry points load in the order of their names, so when two
plugins register the same model id the one whose name sorts first keeps it.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pluggy

from . import hookspecs
from ._registry import PluginRecord, Registry

__all__ = ["HOOKS", "PluginRecord", "Registry", "load_registry"]

log = logging.getLogger("kierouter.plugins")

HOOKS: tuple[str, ...] = (
    "kierouter_register_models",
    "kierouter_register_policies",
    "kierouter_register_judges",
    "kierouter_register_event_sinks",
)
"""Every hook a plugin may implement, in the order the host calls them."""

_ENV_LISTS = ("KIEROUTER_LOAD_PLUGINS", "KIEROUTER_DISABLE_PLUGINS")


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _trace(message: str, *args: object) -> None:
    level = logging.INFO if os.environ.get("KIEROUTER_TRACE_PLUGINS") else logging.DEBUG
    log.log(level, message, *args)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _unknown_env_names(installed: dict[str, str]) -> Iterator[PluginRecord]:
    """A record for each name in the allow/block lists that no installed plugin has."""
    listed = ", ".join(sorted(installed)) or "none"
    by_dist = {dist: name for name, dist in installed.items() if dist}
    for variable in _ENV_LISTS:
        for name in sorted(_env_list(variable) or ()):
            if name in installed:
                continue
            if name in by_dist:
                hint = f"; {name!r} is a distribution, its plugin is named {by_dist[name]!r}"
            elif close := difflib.get_close_matches(name, installed, n=1):
                hint = f"; did you mean {close[0]!r}?"
            else:
                hint = ""
            record = PluginRecord(name=name, source=variable)
            record.fail(
                f"{variable} names {name!r}, which is not installed{hint} (installed: {listed})"
            )
            yield record


def _entry_point_plugins(records: list[PluginRecord]) -> Iterator[tuple[PluginRecord, object]]:
    from importlib_metadata import entry_points

    allow = _env_list("KIEROUTER_LOAD_PLUGINS")
    deny = _env_list("KIEROUTER_DISABLE_PLUGINS") or set()
    # sorted, so that which plugin wins a duplicate id does not depend on the file system
    found = sorted(entry_points(group=hookspecs.PROJECT), key=lambda ep: (ep.name, ep.value))
    installed = {ep.name: ep.dist.name if ep.dist is not None else "" for ep in found}
    records.extend(_unknown_env_names(installed))
    for ep in found:
        if (allow is not None and ep.name not in allow) or ep.name in deny:
            continue
        version = ep.dist.version if ep.dist is not None else None
        record = PluginRecord(name=ep.name, version=version, source=f"entry point {ep.value}")
        records.append(record)
        start = time.perf_counter()
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:  # sys.exit() at import must not end the host
            record.load_ms = _ms_since(start)
            record.fail(f"failed to import: {type(exc).__name__}: {exc}", exc)
            continue
        record.load_ms = _ms_since(start)
        _trace("plugin %r: imported %s in %.1f ms", ep.name, ep.value, record.load_ms)
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
    loaded: list[tuple[PluginRecord, object]] = []
    for plugin in plugins:
        record = PluginRecord(name=_plugin_name(plugin), source="in-process")
        registry.plugins.append(record)
        loaded.append((record, plugin))
    if entry_points:
        loaded.extend(_entry_point_plugins(registry.plugins))
    for n, (record, plugin) in enumerate(loaded):
        start = time.perf_counter()
        try:
            pm.register(plugin, name=f"{record.name}#{n}")
        except pluggy.PluginValidationError as exc:
            record.fail(_spec_mismatch(pm, str(exc).replace(f"{record.name}#{n}", record.name)))
            continue
        except Exception as exc:
            record.fail(f"not a valid plugin: {type(exc).__name__}: {exc}", exc)
            continue
        implemented = _check_hooks(pm, plugin, record)
        _call_hooks(pm, plugin, record, registry)
        record.load_ms += _ms_since(start)
        if record.slow:
            log.info(
                "plugin %r took %.0f ms to load, which every command pays",
                record.name,
                record.load_ms,
            )
        if not implemented and not record.errors:
            record.fail(
                "implements no kierouter hook: decorate kierouter_register_models (or another "
                "hook) with @hookimpl from kierouter"
            )
    return registry


def _check_hooks(pm: pluggy.PluginManager, plugin: object, record: PluginRecord) -> list[str]:
    """Record the hooks that would silently never run; return the real hooks implemented.

    pluggy's :meth:`~pluggy.PluginManager.check_pending` finds hook implementations without a
    specification (an unknown or misspelled ``kierouter_*`` name), but raises for the first one
    only: each such hook of this plugin is named, with the nearest real hook, and dropped so that
    the check starts clean for the next plugin. A ``kierouter_*`` function missing its
    ``@hookimpl`` is invisible to pluggy and is looked for here.
    """
    callers = pm.get_hookcallers(plugin) or []
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        for caller in callers:
            if not caller.has_spec() and any(not i.optionalhook for i in caller.get_hookimpls()):
                record.fail(f"unknown hook {caller.name!r} is never called{_nearest(caller.name)}")
                delattr(pm.hook, caller.name)
    for attribute in dir(plugin):
        if not attribute.startswith(f"{hookspecs.PROJECT}_"):
            continue
        if pm.parse_hookimpl_opts(plugin, attribute) is None and callable(
            getattr(plugin, attribute, None)
        ):
            if attribute in HOOKS:
                record.fail(
                    f"{attribute} is not decorated with @hookimpl (from kierouter import "
                    "hookimpl), so it is never called"
                )
            else:
                record.fail(
                    f"{attribute} looks like a hook but is not one and is never called"
                    f"{_nearest(attribute)}"
                )
    return [caller.name for caller in callers if caller.has_spec()]


def _spec_mismatch(pm: pluggy.PluginManager, pluggy_message: str) -> str:
    """pluggy's refusal of a hook implementation, with the arguments the hook really takes."""
    said = " ".join(pluggy_message.split())
    found = re.search(r"for hook '(\w+)'", pluggy_message)
    caller = getattr(pm.hook, found.group(1), None) if found else None
    if caller is None or caller.spec is None:
        return f"a hook does not match kierouter's hook specification: {said}"
    takes = ", ".join(caller.spec.argnames)
    return f"{caller.name} does not match its specification {caller.name}({takes}): {said}"


def _nearest(name: str) -> str:
    close = difflib.get_close_matches(name, HOOKS, n=1, cutoff=0.5)
    hooks = ", ".join(HOOKS)
    return f"; did you mean {close[0]!r}? (hooks: {hooks})" if close else f" (hooks: {hooks})"


def _call_hooks(
    pm: pluggy.PluginManager, plugin: object, record: PluginRecord, registry: Registry
) -> None:
    for hook_name in HOOKS:
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            kwargs: dict[str, Any] = {"register": registry.register_callback(hook_name, record)}
            before = _registered(record)
            start = time.perf_counter()
            try:
                function: Callable[..., object] = impl.function
                returned = function(*(kwargs[arg] for arg in impl.argnames))
            except (Exception, SystemExit) as exc:
                record.fail(f"{hook_name} raised {type(exc).__name__}: {exc}", exc)
                continue
            finally:
                _trace(
                    "plugin %r: %s took %.2f ms, registered %d",
                    record.name,
                    hook_name,
                    _ms_since(start),
                    _registered(record) - before,
                )
            if returned is not None:
                record.fail(
                    f"{hook_name} returned {type(returned).__name__}, which is ignored: "
                    "hooks register things by calling register(...) and return None"
                )


def _registered(record: PluginRecord) -> int:
    return len(record.models) + len(record.policies) + len(record.judges) + len(record.event_sinks)
