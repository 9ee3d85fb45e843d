"""The shared flags, on every command that takes them: --policy, --model, --max-credits,
--sim, --sim-url, --config, --json, -q; and every numeric option refuses NaN and infinity."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kierouter.cli import build_parser, main
from kierouter.sim import Emulator

CLI = [sys.executable, "-m", "kierouter.cli"]
NANO = "google/nano-banana"
SEEDREAM = "bytedance/seedream-v4-text-to-image"


@pytest.fixture(autouse=True)
def _no_stray_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KIEROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def _numeric_options() -> Iterator[tuple[list[str], str]]:
    """(command path, option) for every option of every command that takes a number."""

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[list[str], str]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            elif action.option_strings and action.type not in (None, str):
                yield path, action.option_strings[-1]

    yield from walk(build_parser(), [])


NUMERIC = list(_numeric_options())


def test_numeric_options_are_found() -> None:
    """The walk finds the numeric options (a guard against an empty parametrisation)."""
    found = {(" ".join(path), option) for path, option in NUMERIC}
    assert ("batch run", "--budget") in found and ("generate", "--time-scale") in found
    assert ("sim", "--time-scale") in found and ("explain", "--max-credits") in found


@pytest.mark.parametrize(
    ("path", "option"), NUMERIC, ids=[f"{' '.join(p)} {o}" for p, o in NUMERIC]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_numeric_option_refuses_nan_and_infinity(
    path: list[str], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--budget nan` once turned the budget off and `--time-scale nan` hung: every numeric
    option now refuses them with a usage error (exit 2) naming the option."""
    assert main([*path, f"{option}={value}"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert re.search(rf"argument (-\w/)?{option}: ", first), first


def test_model_pins_the_plan_on_explain_cost_and_batch_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_json: Callable[..., Any]
) -> None:
    """--model restricts the plan (repeatable, tried in the order given) through the policy,
    the same way on explain, cost and batch plan; a family name allows the whole family."""
    plan = cli_json("explain", "a red fox", "--model", NANO)
    assert [s["model"] for s in plan["plan"]] == [NANO]
    two = cli_json("explain", "a red fox", "--model", NANO, "--model", SEEDREAM)
    assert [s["model"] for s in two["plan"]][:2] == [NANO, SEEDREAM]
    family = cli_json("explain", "a red fox", "--model", "seedream")
    assert {s["family"] for s in family["plan"]} == {"seedream"}
    cost = cli_json("cost", "--count", "10", "--model", NANO)
    assert cost["steps"][0]["plan"] == [NANO] and cost["total"]["credits"] == 40
    assert cli_json("cost", "-n", "3", "--model", NANO)["total"]["credits"] == 12  # -n: --count
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\na cat\n")
    batch = cli_json("batch", "plan", str(prompts), "--model", NANO)
    assert set(batch["per_model"]) == {NANO}


def test_max_credits_and_policy_on_every_planning_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_json: Callable[..., Any]
) -> None:
    """--max-credits caps each model's price and --policy picks the policy on explain, cost and
    batch plan alike."""
    plan = cli_json("explain", "a red fox", "--max-credits", "3.8", "--policy", "budget")
    assert plan["policy"] == "budget" and [s["model"] for s in plan["plan"]] == [SEEDREAM]
    cost = cli_json("cost", "--max-credits", "3.8", "--policy", "budget")
    assert cost["policy"] == "budget" and cost["steps"][0]["plan"] == [SEEDREAM]
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    batch = cli_json("batch", "plan", str(prompts), "--max-credits", "3.8")
    assert set(batch["per_model"]) == {SEEDREAM}


def test_generate_sim_with_model_max_credits_config_and_quiet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_json: Callable[..., Any]
) -> None:
    """generate --sim honours --model, --config and -q (no progress lines); --max-credits
    under every model's price stops before anything runs (exit 1: no model can serve it)."""
    config = tmp_path / "k.toml"
    config.write_text(f'[defaults]\nout_dir = "{(tmp_path / "imgs").as_posix()}"\n')
    out = cli_json(
        "generate", "a red fox", "--sim", "--time-scale", "200", "--model", NANO,
        "--config", str(config), "-q",
    )  # fmt: skip
    assert out["served_model"] == NANO
    assert Path(out["files"][0]["path"]).parent == tmp_path / "imgs"
    assert capsys.readouterr().err == ""
    assert main(["generate", "a fox", "--sim", "--max-credits", "0.5", "-q"]) != 0


def test_sim_url_on_generate_credits_and_status(threaded_emu: Emulator, tmp_path: Path) -> None:
    """--sim-url talks to a running emulator on generate, credits and status (its key, no
    KIE key needed), and --sim always starts an in-process one (credits --sim: a fresh
    balance)."""
    env = {**os.environ, "KIE_API_KEY": ""}

    def cli(*argv: str) -> Any:
        done = subprocess.run(
            [*CLI, *argv, "--json"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    url = ["--sim-url", threaded_emu.base_url]
    result = cli("generate", "a red fox", *url, "--time-scale", "200", "--out", str(tmp_path))
    task = result["attempts"][-1]["task_id"]
    assert threaded_emu.stats()["created_total"] == 1
    assert cli("credits", *url)["credits"] == threaded_emu.balance < 100000
    status = cli("status", task, "--model", result["served_model"], *url)
    assert status["state"] == "success"
    assert cli("credits", "--sim")["credits"] == 100000


def test_time_scale_needs_an_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    """--time-scale without --sim or --sim-url is a usage error, before a key is looked for."""
    assert main(["credits", "--time-scale", "5"]) == 2
    assert "--sim" in capsys.readouterr().err


def test_batch_model_restriction_is_kept_for_resume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_json: Callable[..., Any]
) -> None:
    """batch run --model runs every row on that model, and stores the restriction beside the
    journal so that resume applies it too."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\na cat\n")
    out = tmp_path / "out"
    report = cli_json(
        "batch", "run", str(prompts), "--out", str(out), "--sim", "--time-scale", "200",
        "--model", NANO, "-q",
    )  # fmt: skip
    assert report["complete"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {m["served_model"] for m in manifest} == {NANO}
    stored = json.loads((out / ".kierouter-options.json").read_text())
    assert stored == {"models": [NANO], "max_credits": None}
