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
PLUGIN_DIR = ROOT / "plugins" / "kierouter-seedream"
SEEDREAM_MODELS = {
    "bytedance/seedream-v4-text-to-image",
    "bytedance/seedream-v4-edit",
    "seedream/4.5-text-to-image",
    "seedream/4.5-edit",
    "seedream/5-lite-text-to-image",
    "seedream/5-lite-image-to-image",
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


@pytest.mark.slow
def test_core_plus_one_plugin_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    """uv builds the core and kierouter-seedream wheels; installed alone in a new venv,
    `kierouter plugins --json` lists only seedream and `models --json` only its six models."""
    uv = _uv()
    dist = tmp_path / "dist"
    _run([*uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)])
    _run([*uv, "build", "--wheel", "--out-dir", str(dist), str(PLUGIN_DIR)])
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    assert len(wheels) == 2, wheels
    assert wheels[0].startswith("kierouter-0.1.0-") and wheels[1].startswith(
        "kierouter_seedream-0.1.0-"
    )

    with zipfile.ZipFile(dist / wheels[1]) as wheel:
        names = set(wheel.namelist())
    assert {"kierouter_seedream/__init__.py", "kierouter_seedream/py.typed"} <= names

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
            *(str(dist / name) for name in wheels),
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
    assert [(p["name"], p["version"], p["error"]) for p in plugins] == [("seedream", "0.1.0", None)]
    assert set(plugins[0]["models"]) == SEEDREAM_MODELS
    models = json.loads(_run([kierouter, "models", "--json"], env=env, cwd=tmp_path))
    assert {m["id"] for m in models} == SEEDREAM_MODELS
    assert {(m["family"], m["plugin"]) for m in models} == {("seedream", "seedream")}
    # the venv really is separate: it imports kierouter from its own site-packages
    code = "import kierouter as k, kierouter_seedream as s; print(k.__file__, s.__file__)"
    where = _run([str(python), "-c", code], env=env, cwd=tmp_path).split()
    assert all(path.startswith(str(venv)) for path in where), where
