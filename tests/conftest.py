"""Fixtures shared by the emulator tests: an emulator whose clock only moves when advanced."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kierouter.sim import Emulator


@pytest.fixture(autouse=True, scope="session")
def _kierouter_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The job history and stored keys of the tests' CLI runs go to a temporary folder, never
    the user's own (subprocesses inherit it)."""
    saved = os.environ.get("KIEROUTER_HOME")
    os.environ["KIEROUTER_HOME"] = str(tmp_path_factory.mktemp("kierouter-home"))
    yield
    if saved is None:
        os.environ.pop("KIEROUTER_HOME", None)
    else:
        os.environ["KIEROUTER_HOME"] = saved


@pytest.fixture
def threaded_emu() -> Iterator[Emulator]:
    """An emulator in a background thread (200x time): it keeps answering while a test waits
    on a subprocess or calls the CLI's blocking ``main``."""
    from kierouter.sim import in_thread

    with in_thread(time_scale=200) as emulator:
        yield emulator


@pytest.fixture
def cli_json(capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """``cli_json(*argv)``: run ``kierouter ARGV --json`` in-process, check it exits 0 and
    return what it printed, parsed."""
    import json

    from kierouter.cli import main

    def run(*argv: str) -> Any:
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose clock moves only when advanced (``emu.advance(seconds)``)."""
    async with Emulator(time_scale=1e-6) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the emulator's key (the admin API needs none)."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as client:
        yield client


class PluginSite:
    """A directory of one-module distributions, each with a ``kierouter`` entry point named
    after its module: what ``pip install`` leaves for a plugin, in miniature."""

    #: a plugin module registering one Market model, ``{model}``
    GOOD = """
from kierouter import hookimpl, ModelCard, Pricing
from kierouter.provider import MarketProvider

class P(MarketProvider):
    def build_input(self, card, request, *, seed):
        return {{"prompt": request.prompt}}, [], False

@hookimpl
def kierouter_register_models(register):
    register(ModelCard(id="{model}", family="ep", task_kinds=("generate",),
             pricing=Pricing(credits=2), latency_p50=1, latency_p90=2, quality=5), P())
"""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, name: str, source: str) -> None:
        """Install module ``name`` with ``source`` as plugin ``name`` (version 1.0)."""
        (self.path / f"{name}.py").write_text(source)
        dist = self.path / f"{name}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[kierouter]\n{name} = {name}\n")

    def add_good(self, name: str, model: str) -> None:
        """Install plugin ``name`` registering the Market model ``model``."""
        self.add(name, self.GOOD.format(model=model))


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginSite:
    """An empty :class:`PluginSite` on ``sys.path``, with the plugin allow/block lists unset."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    for variable in ("KIEROUTER_LOAD_PLUGINS", "KIEROUTER_DISABLE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    return PluginSite(site)


def _load_reliability() -> object:
    """tests/reliability_report.py: the ``reliability`` fixture and the report it writes."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "kierouter_tests_reliability"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("reliability_report.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# Attack and fault tests record their counts with this fixture (see reliability_report.py).
reliability = _load_reliability().reliability  # type: ignore[attr-defined]
pytest_sessionfinish = _load_reliability().pytest_sessionfinish  # type: ignore[attr-defined]
