"""The run's shape: stages import only the stages before them, no import circles in the core,
and SyncRouter takes exactly Router's arguments."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import kierouter
from kierouter import Router, SyncRouter

PACKAGE = Path(kierouter.__file__).parent
#: the run's stage modules, each allowed to import only the ones before it
STAGES = ("context", "state", "create", "follow", "deliver", "judge", "settle", "watch", "job")


def _imports(path: Path, package: str) -> set[str]:
    """Every kierouter module ``path`` imports (module level, TYPE_CHECKING and in functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    here = package.split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("kierouter")}


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_later_stage(stage: str) -> None:
    """Lower stages never import higher ones (the job module alone sequences them)."""
    imported = _imports(PACKAGE / "_run" / f"{stage}.py", "kierouter._run")
    later = {f"kierouter._run.{s}" for s in STAGES[STAGES.index(stage) + 1 :]}
    assert imported & later == set()


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["kierouter", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for target in _imports(path, package):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return circles


#: the modules of the run, the router, the money and the records (the core engineer's)
RUN_MODULES = (
    "kierouter._errors", "kierouter._models", "kierouter._results", "kierouter._router",
    "kierouter._sync", "kierouter._task", "kierouter._planning", "kierouter._budget",
    "kierouter._money", "kierouter._completion", "kierouter._downloads", "kierouter._transport",
    "kierouter._events", "kierouter.judging", "kierouter.journal", "kierouter.batch",
    "kierouter._run",
)  # fmt: skip


def test_no_import_circle_through_the_run() -> None:
    """No module of the run, the router, the journal or the batch is in an import circle
    (module level, TYPE_CHECKING or inside functions): _errors <-> _models and
    _router <-> _sync are gone."""
    graph = _graph()
    # ``kierouter/__init__.py`` names every public class for type checkers and loads each on
    # first use: a facade, not a dependency of the modules it re-exports.
    del graph["kierouter"]
    graph = {name: edges - {"kierouter"} for name, edges in graph.items()}
    circles = _circles(graph)
    ours = [sorted(group) for group in circles if any(m.startswith(RUN_MODULES) for m in group)]
    assert ours == []


def test_sync_router_takes_routers_arguments() -> None:
    """SyncRouter's signature is Router's: same names, kinds, defaults and annotations."""
    assert inspect.signature(SyncRouter.__init__) == inspect.signature(Router.__init__)
