"""A griffe extension for the API reference: Sphinx roles become links to public names.

kierouter's docstrings cross-reference with Sphinx roles (``:class:`~kierouter.Registry```,
``:meth:`Router.generate```), which mkdocstrings does not understand, and many targets are
written as the private module that defines them (``kierouter._errors.redact``). Rewriting every
docstring would fight the engineers editing them, so this extension rewrites the docstrings as
griffe loads them, before mkdocstrings renders them:

* a role whose target is a public name, or a member of one, becomes a mkdocstrings
  cross-reference to the name the API pages render (``[`Registry`][kierouter.Registry]``), found
  the way Sphinx finds it: as written, then relative to the object, its class and its module;
* a role whose target is private or outside kierouter (``msgspec.Struct``) becomes plain code
  (a private path shown by its last name only);
* ``~`` shows the last component only; functions and methods get ``()``, as Sphinx shows them.

It is loaded by mkdocs.yml (``extensions: [docs/griffe_public.py]``);
``tests/test_docs_site.py`` fails when a built API page still shows a role or a private name.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import griffe

__all__ = ["PUBLIC_MODULES", "PublicNames", "public_names", "rewrite_roles"]

#: The modules whose ``__all__`` is the public API, most general first: a name exported by
#: several is rendered (and linked) under the first. ``tests/test_docs_api.py`` checks that the
#: API pages render every name they export.
PUBLIC_MODULES = (
    "kierouter",
    "kierouter.policy",
    "kierouter.provider",
    "kierouter.journal",
    "kierouter.batch",
    "kierouter.sim",
    "kierouter.testing",
    "kierouter.webhooks",
    "kierouter.judging",
    "kierouter.hookspecs",
)

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|attr|exc|data|const|mod|obj):"
    r"`(?P<tilde>~?)(?:(?P<title>[^`<]+?)\s*<(?P<target>[^`>]+)>|(?P<bare>[^`]+))`"
)
_CALLABLE_ROLES = frozenset({"func", "meth"})


def _final(obj: Any) -> Any:
    """The object an alias points to (itself when it is not an alias); None if unresolvable."""
    if not obj.is_alias:
        return obj
    try:
        return obj.final_target
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _walk(obj: Any) -> Iterator[Any]:
    """Every object defined in ``obj``'s tree (aliases are visited where they are defined)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def public_names(pkg: Any) -> dict[str, str]:
    """Map the defining path of every public object to the path the API pages render it as."""
    mapping: dict[str, str] = {}
    for module_path in PUBLIC_MODULES:
        module = pkg if module_path == pkg.path else pkg[module_path.split(".", 1)[1]]
        mapping.setdefault(module.path, module_path)
        # the runtime __all__: kierouter's is built from its table of lazy exports, which
        # griffe's static reading cannot evaluate
        for name in importlib.import_module(module_path).__all__:
            if name.startswith("__") or name not in module.members:
                continue
            target = _final(module.members[name])
            if target is not None:
                mapping.setdefault(target.path, f"{module_path}.{name}")
    return mapping


def _public_path(obj: Any, mapping: dict[str, str]) -> str | None:
    """The rendered path of ``obj``: itself if public, else a public member of a public class.

    mkdocstrings leaves out members without a docstring, so a link to one would dangle.
    """
    if obj.path in mapping:
        return mapping[obj.path]
    parent = obj.parent
    if obj.name.startswith("_") or obj.docstring is None or parent is None or not parent.is_class:
        return None
    owner = _public_path(parent, mapping)
    return f"{owner}.{obj.name}" if owner else None


def _scopes(obj: Any) -> Iterator[str]:
    """Where a relative target is looked up, innermost first (as Sphinx does)."""
    scope = obj if obj.is_class or obj.is_module else obj.parent
    while scope is not None:
        yield scope.path
        scope = scope.parent


def _resolve(target: str, context: Any, mapping: dict[str, str]) -> str | None:
    """The rendered path ``target`` names, seen from ``context``; None if it is not public."""
    collection = context.modules_collection
    candidates = [target] if target.startswith("kierouter") else []
    candidates += [f"{scope}.{target}" for scope in _scopes(context)]
    for candidate in candidates:
        try:
            found = collection.get_member(candidate)
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue  # not there, or an import of a module outside the package
        resolved = _final(found)
        if resolved is not None:
            return _public_path(resolved, mapping)
    return None


def rewrite_roles(text: str, context: Any, mapping: dict[str, str]) -> str:
    """``text`` with each Sphinx role replaced by a cross-reference or plain code."""

    def replace(match: re.Match[str]) -> str:
        target = (match["target"] or match["bare"]).strip().lstrip(".~")
        public = _resolve(target, context, mapping)
        if match["title"]:
            shown = match["title"].strip()
        else:
            if match["tilde"]:
                shown = target.rsplit(".", 1)[-1]
            elif target.startswith("kierouter"):
                # a full path is shown as the public one (kierouter._config.x -> kierouter.x), a
                # private one by its last name only
                shown = public or target.rsplit(".", 1)[-1]
            else:
                shown = target
            if match["role"] in _CALLABLE_ROLES:
                shown += "()"
        return f"[`{shown}`][{public}]" if public else f"`{shown}`"

    return _ROLE.sub(replace, text)


class PublicNames(griffe.Extension):
    """Rewrite the Sphinx roles in every docstring of the loaded package (see the module doc)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite once the whole package is loaded, so every target can be resolved."""
        if pkg.path != "kierouter":
            return
        mapping = public_names(pkg)
        for obj in _walk(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = rewrite_roles(obj.docstring.value, obj, mapping)
