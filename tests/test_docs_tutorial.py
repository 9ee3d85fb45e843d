"""The plugin tutorial, followed literally in a fresh directory, gives a plugin that passes its
tests, installs from its wheel and is routed to; the copy-me template's own tests pass too.

The tutorial marks every file it asks the reader to create with a ``title="path"`` on its code
fence; this test writes exactly those blocks, nothing else, into an empty directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "plugins" / "tutorial.md"
TEMPLATE = ROOT / "plugins" / "_template"
TESTING = ROOT / "docs" / "plugins" / "testing.md"
PROJECT = "kierouter-seedream3"
MODEL = "bytedance/seedream"
_TITLED = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```$', re.S | re.M)
_TREE = re.compile(r"^```text\n(" + re.escape(PROJECT) + r"/\n.*?)^```$", re.S | re.M)


def tutorial_files() -> dict[str, str]:
    """Every file the tutorial gives, by its path in the plugin's project."""
    return {title: body for _, title, body in _TITLED.findall(TUTORIAL.read_text("utf-8"))}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "KIEROUTER_"))}
    env.update(UV_NO_PROGRESS="1", **extra)
    return env


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=240, check=False
    )


def _passed(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    match = re.search(r"(\d+) passed", result.stdout)
    return int(match.group(1)) if match else 0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's plugin, written from the tutorial's code blocks into an empty directory."""
    root = tmp_path_factory.mktemp("tutorial") / PROJECT
    for name, body in tutorial_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return root


def test_tutorial_gives_every_file_of_its_layout() -> None:
    """Each source file in the tutorial's project tree has a titled code block, and vice versa."""
    tree = _TREE.search(TUTORIAL.read_text("utf-8"))
    assert tree is not None, "the tutorial lost its project tree"
    listed = set(re.findall(r"([\w-]+\.(?:py|toml))\b", tree.group(1)))
    given = {Path(name).name for name in tutorial_files()}
    assert listed == given


def test_tutorial_plugin_tests_pass(project: Path) -> None:
    """The tutorial's own tests (translation and emulator) pass in the fresh project."""
    result = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        project,
        PYTHONPATH=str(project),
    )
    assert _passed(result) >= 10


@pytest.mark.slow
def test_tutorial_project_syncs_and_tests_with_uv(tmp_path: Path) -> None:
    """Step 7 as written: `uv sync` then `uv run pytest`, in the project created next to a
    kierouter checkout (kierouter is on no package index, so the project's uv source must
    point at the checkout or `uv sync` fails)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    (tmp_path / "kierouter").symlink_to(ROOT, target_is_directory=True)
    root = tmp_path / PROJECT
    for name, body in tutorial_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body, encoding="utf-8")
    env = {"UV_PROJECT_ENVIRONMENT": str(root / ".venv"), "VIRTUAL_ENV": ""}
    synced = _run([uv, "sync", "--offline"], root, **env)
    if synced.returncode != 0 and "network was disabled" in synced.stderr:
        # The test runs offline, so uv resolves the tutorial's dependencies (pytest ...) from
        # the registry answers in its cache. `uv sync --locked` installs from the lock without
        # asking the registry, so a fresh machine has none: `uv lock --check --refresh` once
        # fetches them (.ci/run does). Not a fault of the tutorial.
        pytest.skip("uv's cache holds no registry metadata yet: run `uv lock --check --refresh`")
    assert synced.returncode == 0, synced.stderr[-3000:]
    assert _passed(_run([uv, "run", "--offline", "pytest", "-q"], root, **env)) >= 10


def test_tutorial_code_is_clean(project: Path) -> None:
    """The tutorial's code passes ruff and mypy --strict, as we ask of plugin authors."""
    bin_dir = Path(sys.executable).parent
    rules = ["--isolated", "--line-length", "100"]
    lint = _run(
        [str(bin_dir / "ruff"), "check", *rules, "--select", "E,F,W,I,B,UP,SIM,RUF,PT",
         "--ignore", "RUF001,RUF002,RUF003", "."],
        project,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout
    formatted = _run([str(bin_dir / "ruff"), "format", *rules, "--check", "."], project)
    assert formatted.returncode == 0, formatted.stdout
    typed = _run([sys.executable, "-m", "mypy", "--strict", "kierouter_seedream3"], project)
    assert typed.returncode == 0, typed.stdout


def test_tutorial_plugin_installs_and_is_routed_to(project: Path, tmp_path: Path) -> None:
    """Built with `uv build` and installed, the entry point makes kierouter list and route to it."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    dist = tmp_path / "dist"
    build = _run([uv, "build", "--offline", "--wheel", "--out-dir", str(dist)], project)
    assert build.returncode == 0, build.stderr
    wheels = list(dist.glob("kierouter_seedream3-*.whl"))
    assert len(wheels) == 1
    site = tmp_path / "site"
    install = _run(
        [uv, "pip", "install", "--offline", "--no-deps", "--python", sys.executable,
         "--target", str(site), str(wheels[0])],
        tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    cli = [sys.executable, "-m", "kierouter.cli"]
    env = {"PYTHONPATH": str(site), "KIEROUTER_LOAD_PLUGINS": "seedream3"}

    listed = _run([*cli, "plugins", "--json"], tmp_path, **env)
    assert listed.returncode == 0, listed.stderr
    [plugin] = json.loads(listed.stdout)
    assert (plugin["name"], plugin["models"], plugin["policies"]) == (
        "seedream3",
        [MODEL],
        ["seedream3"],
    )
    assert plugin["error"] is None

    # the emulator knows the model only from the tutorial's scenario; with the plugin alone
    # installed, the named policy and the default `auto` both route to it
    scenario = str(project / "kie-scenario.toml")
    for policy in (["--policy", "seedream3"], []):
        out = tmp_path / f"out{len(policy)}"
        generated = _run(
            [*cli, "generate", "a red fox in snow", "--sim", "--scenario", scenario, *policy,
             "--json", "--out", str(out), "--time-scale", "500"],
            tmp_path,
            **env,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stdout + generated.stderr
        result = json.loads(generated.stdout)
        assert result["served_model"] == MODEL
        assert [Path(f["path"]).parent for f in result["files"]] == [out]


def test_template_tests_pass(tmp_path: Path) -> None:
    """The copy-me template's own tests pass in a fresh copy, outside this workspace."""
    copy = tmp_path / "kierouter-example"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    result = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], copy, PYTHONPATH=str(copy)
    )
    assert _passed(result) >= 15


def test_testing_page_shows_the_templates_files_verbatim() -> None:
    """Each file the testing page shows whole (a titled block) is the template's file, so the
    template's own tests run the documented example."""
    shown = {title: body for _, title, body in _TITLED.findall(TESTING.read_text("utf-8"))}
    assert "tests/test_example_mock.py" in shown
    for title, body in shown.items():
        assert (TEMPLATE / title).read_text("utf-8") == body, title
