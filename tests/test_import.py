"""`import kierouter` stays light: no network stack, no CLI or server packages."""

from __future__ import annotations

import subprocess
import sys

import kierouter

HEAVY = ("httpx", "stamina", "click", "typer", "rich", "starlette", "uvicorn", "aiohttp", "anyio")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_import_kierouter_loads_no_heavy_packages() -> None:
    """A cold `import kierouter` imports none of the network, CLI or server packages."""
    loaded = _modules_after("import kierouter")
    assert not [m for m in HEAVY if m in loaded]


def test_cards_and_policies_stay_off_the_network_stack() -> None:
    """Building requests, cards and policies does not import httpx either."""
    loaded = _modules_after(
        "import kierouter as k\n"
        "k.ImageRequest(prompt='x').validate()\n"
        "k.Policy(name='p')\n"
        "k.ModelCard(id='a', family='b', task_kinds=('generate',), pricing=k.Pricing(credits=1),"
        " latency_p50=1, latency_p90=2, quality=1)"
    )
    assert "httpx" not in loaded


def test_all_names_resolve_and_have_docstrings() -> None:
    """Every name in __all__ resolves and carries a docstring."""
    for name in kierouter.__all__:
        if name == "__version__":
            continue
        value = getattr(kierouter, name)
        assert getattr(value, "__doc__", None), f"{name} has no docstring"
