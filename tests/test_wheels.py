"""Packaging: the core and a plugin build as wheels, and a fresh virtual environment holding only
those two lists exactly that plugin and its models."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: plugin distribution folder -> entry-point (plugin) name
PLUGINS = {
    "kierouter-seedream": "seedream",
    "kierouter-nano-banana": "nano-banana",
    "kierouter-qwen": "qwen",
    "kierouter-flux-kontext": "flux-kontext",
    "kierouter-gpt4o-image": "gpt4o-image",
    "kierouter-midjourney": "midjourney",
    "kierouter-recraft": "recraft",
}


def _uv() -> list[str]:
    """The uv command: on PATH, or as ``python -m uv``; skip (saying why) when neither exists."""
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.skip("uv is not installed (neither on PATH nor as `python -m uv`); cannot build wheels")


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def core_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core distribution built once as a wheel."""
    dist = tmp_path_factory.mktemp("core-dist")
    _run([*_uv(), "build", "--wheel", "--out-dir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("*.whl")
    assert wheel.name.startswith("kierouter-0.1.0-")
    return wheel


def _workspace_models(plugin: str) -> set[str]:
    """The model ids this plugin registers in the development environment (all plugins)."""
    from kierouter import load_registry

    return {card.id for card in load_registry().cards.values() if card.plugin == plugin}


@pytest.mark.slow
@pytest.mark.parametrize("folder", list(PLUGINS))
def test_core_plus_one_plugin_wheel_in_a_fresh_venv(
    folder: str, core_wheel: Path, tmp_path: Path
) -> None:
    """uv builds the plugin's wheel; installed with only the core wheel in a new venv,
    `kierouter plugins --json` lists exactly that plugin and `models --json` exactly its
    models (the same ids it registers in the workspace)."""
    uv = _uv()
    name = PLUGINS[folder]
    package = folder.replace("-", "_")
    expected = _workspace_models(name)
    assert expected, f"{name} registers no model in the workspace"
    dist = tmp_path / "dist"
    _run([*uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT / "plugins" / folder)])
    (plugin_wheel,) = dist.glob("*.whl")
    assert plugin_wheel.name.startswith(f"{package}-0.1.0-")
    with zipfile.ZipFile(plugin_wheel) as wheel:
        names = set(wheel.namelist())
    assert {f"{package}/__init__.py", f"{package}/py.typed"} <= names
    shutil.copy(core_wheel, dist)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # the two wheels come from dist; their third-party dependencies from PyPI (or uv's cache)
    _run(
        [
            *uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--find-links",
            str(dist),
            str(dist / core_wheel.name),
            str(plugin_wheel),
        ]
    )

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KIEROUTER_", "VIRTUAL_ENV", "PYTHON"))
    }
    kierouter = str(venv / "bin" / "kierouter")
    # run outside the checkout, so that nothing can import the source tree instead
    plugins = json.loads(_run([kierouter, "plugins", "--json"], env=env, cwd=tmp_path))
    assert [(p["name"], p["version"], p["error"]) for p in plugins] == [(name, "0.1.0", None)]
    assert set(plugins[0]["models"]) == expected
    models = json.loads(_run([kierouter, "models", "--json"], env=env, cwd=tmp_path))
    assert {m["id"] for m in models} == expected
    assert {m["plugin"] for m in models} == {name}
    # the venv really is separate: it imports kierouter from its own site-packages
    code = f"import kierouter as k, {package} as p; print(k.__file__, p.__file__)"
    where = _run([str(python), "-c", code], env=env, cwd=tmp_path).split()
    assert all(path.startswith(str(venv)) for path in where), where


TEMPLATE = ROOT / "plugins" / "_template"
#: a Market model id that neither kierouter nor its emulator ships
NEW_MODEL = "acme/imagine-1"

ROUTE_THROUGH_SIM = """
import asyncio, json, sys
from kierouter import Router

async def main() -> None:
    url, key, out = sys.argv[1:4]
    async with Router(base_url=url, api_key=key, out_dir=out, allow_private_downloads=True,
                      latency_scale=1 / 500) as router:
        result = await router.generate("a red fox in snow")
    print(json.dumps({"served": result.served_model, "files": [f.path for f in result.files]}))

asyncio.run(main())
"""
#: the emulator's counters, from its admin API
_STATS = """
import json, sys, httpx
print(json.dumps(httpx.get(sys.argv[1] + "/_sim/stats").json()))
"""


def _as_an_author(copy: Path) -> None:
    """Give the copied template a model id nothing ships, as its README's "Make it yours" says:
    the card and kie-scenario.toml (where the model's KIE rules stay wan's)."""
    for name, old, new in [
        (
            "kierouter_example/__init__.py",
            'MODEL_ID = "wan/2-7-image"',
            f'MODEL_ID = "{NEW_MODEL}"',
        ),
        ("kierouter_example/__init__.py", 'family="wan"', 'family="acme"'),
        ("kie-scenario.toml", '"wan/2-7-image"', f'"{NEW_MODEL}"'),
        ("kie-scenario.toml", 'family = "wan"', 'family = "acme"'),
    ]:
        path = copy / name
        text = path.read_text("utf-8")
        assert old in text, f"the template lost {old!r} in {name}"
        path.write_text(text.replace(old, new), "utf-8")


@pytest.mark.slow
def test_template_outside_the_workspace_serves_a_model_known_only_from_its_scenario(
    core_wheel: Path, tmp_path: Path
) -> None:
    """The copy-me template, copied out of the workspace and given a model id that neither
    kierouter nor its emulator ships, builds as its own distribution. Installed with only the
    core wheel in a fresh venv: its kie-scenario.toml teaches `kierouter sim` (a subprocess) the
    model and a generate is routed to it there under the default policy; `generate --sim
    --scenario` does the same in one command; and the template's emulator tests pass through the
    kie_emulator fixture, which loads the scenario for a model the emulator does not ship."""
    import select
    import signal

    uv = _uv()
    copy = tmp_path / "kierouter-acme"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    _as_an_author(copy)
    scenario = str(copy / "kie-scenario.toml")
    dist = tmp_path / "dist"
    _run([*uv, "build", "--wheel", "--out-dir", str(dist), str(copy)])
    (plugin_wheel,) = dist.glob("kierouter_example-*.whl")
    shutil.copy(core_wheel, dist)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _run(
        [*uv, "pip", "install", "--quiet", "--python", python, "--find-links", str(dist),
         str(dist / core_wheel.name), str(plugin_wheel), "pytest>=8", "pytest-asyncio>=0.24"]
    )  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KIE_", "KIEROUTER_", "VIRTUAL_ENV", "PYTHON"))
    }
    kierouter = str(venv / "bin" / "kierouter")
    [plugin] = json.loads(_run([kierouter, "plugins", "--json"], env=env, cwd=tmp_path))
    assert (plugin["name"], plugin["models"], plugin["error"]) == ("example", [NEW_MODEL], None)

    # kierouter sim, a separate process, learns the model from the scenario
    sim = subprocess.Popen(
        [kierouter, "sim", "--scenario", scenario, "--port", "0", "--time-scale", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert sim.stdout is not None
        ready, _, _ = select.select([sim.stdout], [], [], 60)
        assert ready, "kierouter sim did not print its URL"
        url, key = sim.stdout.readline().strip(), sim.stdout.readline().strip()
        out = tmp_path / "via-sim"
        routed = json.loads(
            _run([python, "-c", ROUTE_THROUGH_SIM, url, key, str(out)], env=env, cwd=tmp_path)
        )
        assert routed["served"] == NEW_MODEL
        assert [Path(p).parent for p in routed["files"]] == [out]
        stats = json.loads(_run([python, "-c", _STATS, url], env=env, cwd=tmp_path))
        assert stats["created"] == {NEW_MODEL: 1}
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=30)

    # the same in one command: generate with its own emulator and the scenario
    out = tmp_path / "via-generate"
    generated = json.loads(
        _run(
            [kierouter, "generate", "a red fox in snow", "--sim", "--scenario", scenario,
             "--json", "--out", str(out), "--time-scale", "500"],
            env=env,
            cwd=tmp_path,
        )
    )  # fmt: skip
    assert generated["served_model"] == NEW_MODEL

    # the template's emulator tests, through the kie_emulator fixture and the scenario
    tests = _run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_example_emulator.py"],
        env=env,
        cwd=copy,
    )
    assert re.search(r"^4 passed", tests, re.M), tests
