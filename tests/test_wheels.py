"""Packaging: the core and a plugin build as wheels, and a fresh virtual environment holding only
those two lists exactly that plugin and its models."""

from __future__ import annotations

import json
import os
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
