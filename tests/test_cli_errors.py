"""The exit-code table, one-line errors, the missing-key path and the flag suggestions."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kierouter._errors import (
    AmbiguousSubmissionError,
    AuthError,
    ConfigurationError,
    InsufficientCreditsError,
    JobFailedError,
    PaidUndeliveredError,
    ValidationError,
)
from kierouter.cli import build_parser, main
from kierouter.cli._common import EXIT_CODES
from kierouter.sim import Emulator

CLI = [sys.executable, "-m", "kierouter.cli"]
ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_docs_print_the_exit_code_table() -> None:
    """docs/cli.md's exit-code table lists exactly the codes the CLI returns."""
    text = (ROOT / "docs" / "cli.md").read_text("utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert documented == set(EXIT_CODES)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationError("count", "too many"), 2),
        (ConfigurationError("bad key"), 2),
        (AuthError("no access", code=401), 3),
        (InsufficientCreditsError("top up", code=402), 4),
        (AmbiguousSubmissionError("answer lost"), 5),
        (JobFailedError("every model failed", attempts=()), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_every_error_class_maps_to_its_exit_code(
    error: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() turns each error a command raises into the documented code and one stderr line."""

    def command(args: argparse.Namespace) -> int:
        raise error

    parser = build_parser()
    args = parser.parse_args(["models"])
    args.func = command
    from unittest import mock

    with mock.patch("kierouter.cli.CommandParser.parse_args", return_value=args):
        assert main(["models"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kierouter: error: ")


def test_paid_but_undelivered_exits_6(capsys: pytest.CaptureFixture[str]) -> None:
    """A job KIE made and billed whose image could not be saved ends with 6, not 1."""
    from kierouter._models import Result

    paid = Result(served_model="m", attempts=(), credits=3.5, urls=("https://x/1.png",))
    error = PaidUndeliveredError("saved nothing", result=paid)
    from kierouter.cli._common import exit_code_for

    assert exit_code_for(error) == 6


def test_missing_key_stops_before_anything_is_sent(threaded_emu: Emulator, tmp_path: Path) -> None:
    """No key: one line naming KIE_API_KEY, `kierouter keys set` and --sim, exit 3, and the
    emulator standing in for KIE received nothing (generate, batch run, credits, status)."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    env = {
        "KIE_API_KEY": "",
        "KIE_BASE_URL": threaded_emu.base_url,
        "KIEROUTER_HOME": str(tmp_path),
    }
    for argv in (
        ["generate", "a red fox", "--out", str(tmp_path)],
        ["batch", "run", str(prompts), "--out", str(tmp_path / "b")],
        ["credits"],
        ["status", "abc", "--model", "google/nano-banana"],
    ):
        done = _cli(*argv, **env)
        assert done.returncode == 3, done.stderr
        (line,) = done.stderr.splitlines()
        assert "KIE_API_KEY" in line and "kierouter keys set" in line and "--sim" in line
        assert len(line) < 160
    stats = threaded_emu.stats()
    assert stats["created_total"] == 0 and stats["rejected"] == {} and stats["status_reads"] == 0
    assert not (tmp_path / "b").exists()


def test_kie_refusals_and_failures_end_with_their_codes(
    threaded_emu: Emulator, tmp_path: Path
) -> None:
    """Against KIE's API (the emulator): a refused key exits 3, an empty account 4, a job every
    model fails 1, a create whose answer was lost 5 — each with one error line."""
    home = {"KIEROUTER_HOME": str(tmp_path)}
    generate = ["generate", "a red fox", "--out", str(tmp_path), "-q"]
    sim = [*generate, "--sim-url", threaded_emu.base_url, "--time-scale", "200"]
    refused = _cli(*sim, KIE_SIM_API_KEY="not-the-key-123", **home)
    assert refused.returncode == 3 and refused.stderr.count("\n") == 1
    threaded_emu.configure("*", fail_rate=1.0)
    failed = _cli(*sim, **home)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1
    threaded_emu.reset(credits=0)
    broke = _cli(*sim, **home)
    assert broke.returncode == 4 and broke.stderr.count("\n") == 1
    threaded_emu.reset()
    threaded_emu.inject("drop_connection", rate=1.0, paths=["create"], count=100)
    lost = _cli(
        *generate, KIE_API_KEY=threaded_emu.api_key, KIE_BASE_URL=threaded_emu.base_url, **home
    )
    assert lost.returncode == 5 and "not resubmitted" in lost.stderr


def test_a_request_no_model_can_run_is_one_short_line(
    threaded_emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """generate (exit 1, nothing created) and cost (exit 2) under a cap no model meets say so in
    one line of a few reasons and point to explain, not every dropped model's reason (~2,000
    characters); generate --json still prints the empty attempt trail."""
    monkeypatch.setenv("KIEROUTER_HOME", str(tmp_path))
    sim = ["--sim-url", threaded_emu.base_url, "--time-scale", "200", "--out", str(tmp_path)]
    assert main(["generate", "a red fox", "--max-credits", "1", *sim]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400, err
    assert "models dropped" in err and "over the cap of 1" in err and "kierouter explain" in err
    assert threaded_emu.stats()["created_total"] == 0
    assert main(["generate", "a red fox", "--max-credits", "1", "--json", *sim]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": err.split("error: ", 1)[1].strip(), "attempts": []}
    assert main(["cost", "--max-credits", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400 and "the generate step" in err, err


@pytest.mark.parametrize("command", ["generate", "batch"])
def test_an_out_folder_that_cannot_be_made_is_refused_before_anything_is_sent(
    command: str, threaded_emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming a file (or a folder under one) is one error line, exit 2, and no task is
    created: the images of a paid task would have nowhere to go (it was a traceback after the
    task was paid)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red fox\n")
    job = ["generate", "a red fox"] if command == "generate" else ["batch", "run", str(prompts)]
    sim = ["--sim-url", threaded_emu.base_url, "--time-scale", "200", "--no-log"]
    for out in (blocker, blocker / "images"):
        assert main([*job, "--out", str(out), *sim]) == 2
        err = capsys.readouterr().err
        assert err == f"kierouter: error: --out {out}: {blocker} is a file, not a folder\n"
    assert threaded_emu.stats()["created_total"] == 0


@pytest.mark.parametrize("command", ["generate", "batch"])
def test_a_listen_address_in_use_is_one_line_and_exit_2(
    command: str, threaded_emu: Emulator, tmp_path: Path
) -> None:
    """--listen on a port already taken ends with one line naming the address (exit 2), not an
    OSError traceback, and nothing is created."""
    busy = threaded_emu.base_url.removeprefix("http://")  # the emulator holds this port
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red fox\n")
    job = ["generate", "a red fox"] if command == "generate" else ["batch", "run", str(prompts)]
    done = _cli(
        *job, "--out", str(tmp_path / "out"), "--listen", busy, "--public-url",
        threaded_emu.base_url, "-q",
        KIE_API_KEY=threaded_emu.api_key, KIE_BASE_URL=threaded_emu.base_url,
        KIEROUTER_HOME=str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"kierouter: error: cannot listen on {busy} for callbacks: Address already in use; "
        "choose another"
    ]
    assert threaded_emu.stats()["created_total"] == 0


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["generat", "a fox"], "did you mean 'generate'?"),
        (["generate", "a fox", "--polcy", "budget"], "did you mean '--policy'?"),
        (["explain", "a fox", "--max-credts", "5"], "did you mean '--max-credits'?"),
        (["batch", "rn", "p.txt"], "did you mean 'run'?"),
        (["generate", "a fox", "--task", "edt"], "did you mean 'edit'?"),
        (["explain", "a fox", "--model", "nano-banan"], "did you mean 'nano-banana'?"),
        (["models", "--family", "seedrem"], "did you mean 'seedream'?"),
        # a prefix is not taken for the option it starts (argparse's default would)
        (["generate", "a fox", "--max-cred", "3", "--sim"], "did you mean '--max-credits'?"),
        (["upload", "photo.png", "--sim"], "start one with `kierouter sim` and pass --sim-url"),
    ],
)
def test_mistakes_suggest_the_nearest_valid_word(
    argv: list[str], wanted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped command, subcommand, option, choice, model or family exits 2 with one line
    naming the nearest valid one (argparse does this only from Python 3.14)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert wanted in err.splitlines()[0]


def test_logging_flags_work_before_and_after_the_command() -> None:
    """`kierouter -v plugins` and `kierouter plugins -v` both mean verbose; so does -q."""
    parser = build_parser()
    before = parser.parse_args(["-v", "plugins"])
    after = parser.parse_args(["plugins", "-v", "-q"])
    assert before.verbose == 1 and not hasattr(before, "verbose_after")
    assert after.verbose == 0 and after.verbose_after == 1 and after.quiet_after is True
    nested = parser.parse_args(["batch", "status", "out", "-vv"])
    assert nested.verbose_after == 2


@pytest.mark.parametrize("flag", ["--spool", "--token-secret"])
def test_webhook_serve_db_refuses_options_it_cannot_honour(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`webhook serve --db` checks each callback with its batch's own key and sends it on through
    the database: a spool or a token secret given with it would be ignored, so it is refused
    by name before anything starts (no database is needed to say so)."""
    code = main(["webhook", "serve", "--db", "postgresql://nowhere.invalid/x", flag, "value"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{flag} does not apply with --db" in err
