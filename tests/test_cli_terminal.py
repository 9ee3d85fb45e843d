"""The CLI in a pseudo-terminal (pexpect) read through a terminal emulator (pyte): progress
redraws in place within 80 and 60 columns; Ctrl-C leaves a clean line and the resume command;
piped, the same commands write no control characters."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pyte
import pytest

from kierouter.sim import Emulator

CLI = [sys.executable, "-m", "kierouter.cli"]
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
SPIN = ("✓", "✗", *"⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _interruptible() -> None:
    # A terminal's foreground program takes Ctrl-C. When pytest itself was started in the
    # background by a non-interactive shell, SIGINT is ignored and children inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(argv: list[str], cols: int, cwd: Path) -> tuple[pexpect.spawn, pyte.Screen, pyte.Stream]:
    env = {**os.environ, "TERM": "xterm-256color", "KIE_API_KEY": ""}
    env.pop("COLUMNS", None)
    child = pexpect.spawn(
        sys.executable, [*CLI[1:], *argv], env=env, dimensions=(40, cols), encoding="utf-8",
        cwd=str(cwd), timeout=120, preexec_fn=_interruptible,
    )  # fmt: skip
    screen = pyte.Screen(cols, 40)
    return child, screen, pyte.Stream(screen)


def _drain(child: pexpect.spawn, stream: pyte.Stream) -> str:
    raw = []
    while True:
        try:
            data = child.read_nonblocking(65536, timeout=120)
        except pexpect.EOF:
            break
        raw.append(data)
        stream.feed(data)
    child.close()
    return "".join(raw)


def _lines(screen: pyte.Screen) -> list[str]:
    return [line.rstrip() for line in screen.display if line.strip()]


def _prompts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "p.txt"
    path.write_text("".join(f"a lighthouse at dawn, study {i}\n" for i in range(n)))
    return path


@pytest.mark.parametrize("cols", [80, 60])
def test_batch_bar_redraws_in_place(tmp_path: Path, cols: int) -> None:
    """A batch's bar is one line that fits the width and is redrawn, not repeated: the final
    screen holds one progress line (done/failed/running counts, credits), then the report."""
    prompts = _prompts(tmp_path, 12)
    child, screen, stream = _spawn(
        ["batch", "run", str(prompts), "--out", "out", "--sim", "--time-scale", "50",
         "--create-rate", "4", "--create-window", "1"],
        cols, tmp_path,
    )  # fmt: skip
    raw = _drain(child, stream)
    assert child.exitstatus == 0, raw[-2000:]
    lines = _lines(screen)
    progress = [line for line in lines if " done · " in line]
    assert len(progress) == 1 and progress[0].startswith("━")
    assert "12/12 done" in progress[0] and "credits" in progress[0]
    assert raw.count("\r\n") < 10  # each update went back over the line, no new lines
    assert raw.count("\x1b[2K") > 2  # erased and redrawn
    assert "running" in raw  # counts of jobs in flight were shown while it ran
    drawn = [p for p in re.split(r"[\r\n]", ANSI.sub("", raw)) if " done" in p]
    assert drawn and max(len(part) for part in drawn) <= cols


@pytest.mark.parametrize("cols", [80, 60])
def test_generate_spinner_redraws_in_place(tmp_path: Path, cols: int) -> None:
    """generate shows one spinner line (stage, elapsed, credits) that ends as a ✓ line, and
    every escalation printed above it as it happened."""
    child, screen, stream = _spawn(
        ["generate", "a red fox in snow", "--sim", "--time-scale", "50", "--policy", "quality"],
        cols, tmp_path,
    )  # fmt: skip
    raw = _drain(child, stream)
    assert child.exitstatus == 0, raw[-2000:]
    lines = _lines(screen)
    status = [line for line in lines if line.startswith(SPIN)]
    assert len(status) == 1 and status[0].startswith("✓ [") and "credits" in status[0]
    assert "created on " in raw and "planned: " in raw  # the stages went by
    drawn = [p for p in re.split(r"[\r\n]", ANSI.sub("", raw)) if p.startswith(SPIN)]
    assert drawn and max(len(part) for part in drawn) <= cols


def test_ctrl_c_leaves_a_clean_line_and_the_resume_command(tmp_path: Path) -> None:
    """Ctrl-C during a batch: the bar stays on its own line, then what was done and the exact
    command that continues the batch; exit 130."""
    prompts = _prompts(tmp_path, 40)
    child, screen, stream = _spawn(
        ["batch", "run", str(prompts), "--out", "out dir", "--sim", "--time-scale", "2",
         "--create-rate", "2", "--create-window", "1"],
        200, tmp_path,  # wide enough for the temporary folder's path on one line
    )  # fmt: skip
    child.expect("running")
    stream.feed(child.before + child.after)
    time.sleep(1)
    child.sendintr()
    _drain(child, stream)
    assert child.exitstatus == 130
    lines = _lines(screen)
    at = next(i for i, line in enumerate(lines) if line.startswith("interrupted: "))
    assert " done · " in lines[at - 1]  # the bar, left whole
    assert lines[at + 1].strip() == f"kierouter batch resume '{tmp_path / 'out dir'}'"


def test_ctrl_c_after_a_create_prints_a_command_that_fetches_the_task(
    tmp_path: Path, threaded_emu: Emulator
) -> None:
    """Ctrl-C while a task created on a running emulator is in flight: the printed status
    command points at that emulator (not KIE), and run as printed it downloads the image."""
    threaded_emu.configure("*", latency=(4000, 5000))  # 20 s or more at 200x: interrupted first
    child, _screen, stream = _spawn(
        ["generate", "a red fox", "--sim-url", threaded_emu.base_url, "--time-scale", "200",
         "--out", "out"],
        300, tmp_path,
    )  # fmt: skip
    child.expect("created on")
    stream.feed(child.before + child.after)
    child.sendintr()
    raw = ANSI.sub("", _drain(child, stream))
    assert child.exitstatus == 130
    hint = next(line for line in raw.splitlines() if "fetch it with: " in line)
    argv = shlex.split(hint.split("fetch it with: ", 1)[1])
    assert argv[:2] == ["kierouter", "status"] and threaded_emu.base_url in argv
    threaded_emu.advance(6000)
    fetched = subprocess.run(
        [*CLI, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "KIE_API_KEY": ""},
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_piped_progress_has_no_control_characters(tmp_path: Path) -> None:
    """Piped, generate and batch write plain progress lines to stderr: no escape sequences, no
    carriage returns; with -q none at all."""
    env = {**os.environ, "KIE_API_KEY": ""}
    prompts = _prompts(tmp_path, 3)
    for argv in (
        ["generate", "a red fox", "--sim", "--time-scale", "100"],
        ["batch", "run", str(prompts), "--out", "b", "--sim", "--time-scale", "100",
         "--progress-interval", "0.2"],
    ):  # fmt: skip
        done = subprocess.run(
            [*CLI, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr and not CONTROL.search(done.stderr + done.stdout)
        assert all(re.match(r"\[\d+s\] ", line) for line in done.stderr.splitlines())
    quiet = subprocess.run(
        [*CLI, "generate", "a fox", "--sim", "--time-scale", "100", "-q"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_callback_of_a_failed_task_is_not_shown_as_downloading(tmp_path: Path) -> None:
    """A callback is a hint, confirmed by a status read: when the task failed, the progress
    never said it was downloading (every 'downloading' stage is followed by 'downloaded')."""
    scenario = tmp_path / "fail.toml"
    scenario.write_text('[models."bytedance/seedream-v4-text-to-image"]\nfail_rate = 1.0\n')
    done = subprocess.run(
        [*CLI, "generate", "a red fox", "--sim", "--time-scale", "100", "--scenario",
         str(scenario), "--policy", "budget"],
        env={**os.environ, "KIE_API_KEY": ""}, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any("failed" in line for line in lines) and "callback" in done.stderr
    for at, line in enumerate(lines):
        if "downloading" in line:
            assert "downloaded" in lines[at + 1], lines
