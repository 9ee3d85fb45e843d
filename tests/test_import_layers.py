"""The plugin host, the hook specifications and the policy engine import in one direction.

Every ``import`` in the package is read from the source (module-level, inside functions and
under ``TYPE_CHECKING`` alike), and modules are grouped by the package's first level
(``kierouter.policy._planner`` counts as ``policy``), as a reader finds them by folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kierouter"
#: the plugin-facing modules that must not sit on an import circle
PLUGIN_SIDE = {
    "_plugins", "_registry", "_card_check", "hookspecs", "provider", "policy", "_explain",
}  # fmt: skip


def _unit(path: Path) -> str:
    """The first-level name a module belongs to: ``policy`` for ``policy/_planner.py``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    """First-level kierouter names ``path`` imports, wherever the import statement sits."""
    tree = ast.parse(path.read_text("utf-8"))
    package = path.relative_to(PACKAGE).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["kierouter", *package][: len(package) + 2 - node.level]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "kierouter" and len(parts) > 1:
                found.add(parts[1])
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    units = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith(".")}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # the package's lazy re-exports name everything on purpose
        unit = _unit(path)
        graph.setdefault(unit, set()).update(n for n in _imports(path) if n in units and n != unit)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        unit = todo.pop()
        if unit == goal:
            return True
        if unit not in seen:
            seen.add(unit)
            todo.extend(graph.get(unit, ()))
    return False


def test_reader_sees_the_known_imports() -> None:
    """The reader finds lazy and TYPE_CHECKING imports (guards the parser)."""
    graph = _graph()
    assert "hookspecs" in graph["_plugins"]  # module level
    assert "policy" in graph["_registry"]  # inside a function
    assert "judging" in graph["hookspecs"]  # under TYPE_CHECKING
    assert {"_plugins", "policy"} <= graph["_explain"]


def test_no_plugin_side_module_is_on_an_import_circle() -> None:
    """None of the host, the hook specs, the provider helpers, the policy engine and explain
    reaches itself again through its imports (issue 13: `_plugins` ↔ `hookspecs` ↔ `policy`)."""
    graph = _graph()
    circular = [
        (unit, other)
        for unit in sorted(PLUGIN_SIDE)
        for other in sorted(graph.get(unit, ()))
        if _reaches(graph, other, unit)
    ]
    assert circular == []


def test_policy_engine_does_not_import_the_plugin_host() -> None:
    """The policy engine plans over cards it is given; loading plugins happens above it."""
    assert not _graph()["policy"] & {"_plugins", "_registry", "hookspecs", "_explain"}
