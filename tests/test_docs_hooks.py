"""The hook reference (docs/plugins/hooks.md) documents every hook with its exact signature."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kierouter import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "hooks.md"
_FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def _hooks() -> dict[str, Callable[..., Any]]:
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, f"{hookspecs.PROJECT}_spec")
    }


def _sections() -> dict[str, str]:
    parts = re.split(r"^## (\S+)\s*$", DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty or value is inspect.Signature.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _runtime(fn: Callable[..., Any], *, drop_self: bool = False) -> str:
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1 if drop_self else 0 :]
    args = ", ".join(f"{p.name}: {_annotation(p.annotation)}" for p in params)
    return f"({args}) -> {_annotation(sig.return_annotation)}"


def _documented(node: ast.FunctionDef) -> str:
    args = ", ".join(
        f"{a.arg}: {ast.unparse(a.annotation) if a.annotation else ''}" for a in node.args.args
    )
    returns = ast.unparse(node.returns) if node.returns else ""
    return f"({args}) -> {returns}"


def _documented_def(section: str, name: str) -> ast.FunctionDef | None:
    for block in _FENCE.findall(section):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node
    return None


def _documented_register(section: str) -> str | None:
    """The ``register(...) -> ...`` line of a section, as ``(args) -> return``."""
    for block in _FENCE.findall(section):
        match = re.fullmatch(r"register(\(.*\) -> .+)\n", block)
        if match:
            return match.group(1)
    return None


def test_every_hook_has_its_own_heading() -> None:
    """Each hook declared in kierouter.hookspecs has a '## <hook name>' section."""
    missing = sorted(set(_hooks()) - set(_sections()))
    assert not missing, f"undocumented hooks in docs/plugins/hooks.md: {missing}"


def test_no_documented_hook_is_stale() -> None:
    """Every 'kierouter_*' section names a hook that still exists."""
    documented = {name for name in _sections() if name.startswith("kierouter_")}
    stale = sorted(documented - set(_hooks()))
    assert not stale, f"docs/plugins/hooks.md documents hooks that do not exist: {stale}"


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_documented_signature_is_exact(name: str) -> None:
    """The def shown under a hook's heading has the hookspec's parameters and annotations."""
    section = _sections().get(name, "")
    node = _documented_def(section, name)
    assert node is not None, f"no `def {name}(...)` code block under '## {name}'"
    assert _documented(node) == _runtime(_hooks()[name])


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_documented_register_callback_is_exact(name: str) -> None:
    """The register(...) signature shown for a hook matches its callback Protocol."""
    annotation = inspect.signature(_hooks()[name]).parameters["register"].annotation
    protocol = getattr(hookspecs, annotation)
    documented = _documented_register(_sections().get(name, ""))
    assert documented is not None, f"no `register(...) -> ...` block under '## {name}'"
    assert documented == _runtime(protocol.__call__, drop_self=True)
