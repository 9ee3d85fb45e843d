"""`kierouter explain` and `kierouter cost`: JSON shape, caps, config policies, the calculator.

The installed Seedream, Nano Banana and Recraft plugins are used (KIEROUTER_LOAD_PLUGINS pins
them, so plugins landing later do not change the numbers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kierouter.cli import main

SEEDREAM = "bytedance/seedream-v4-text-to-image"


@pytest.fixture(autouse=True)
def _pinned_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "seedream,nano-banana,recraft")
    monkeypatch.delenv("KIEROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./kierouter.toml


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_explain_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """--json carries plan, dropped, the expected credits (a job, an accepted image) and
    seconds, p_success and intent; budget plans Seedream first; every installed model is
    planned or dropped; per accepted image the cheapest-first plan costs at least its first
    step (failed tasks are free, so a job alone may cost less)."""
    out = run_json(capsys, "explain", "a red fox in snow", "--policy", "budget")
    keys = {"plan", "dropped", "expected_credits", "credits_per_accepted", "expected_seconds"}
    assert keys | {"p_success", "intent", "policy"} <= set(out)
    assert out["policy"] == "budget" and out["intent"] == ["generate"]
    first = out["plan"][0]
    assert first["model"] == SEEDREAM
    assert set(first) == {
        "model",
        "family",
        "credits",
        "latency_p50",
        "latency_mean",
        "quality",
        "p_success",
        "p_billed",
        "p_reached",
        "reason",
    }
    assert all(set(d) == {"model", "reason"} and d["reason"] for d in out["dropped"])
    assert 0 < out["p_success"] <= 1 and out["credits_per_accepted"] >= first["credits"]
    assert out["expected_credits"] == pytest.approx(
        sum(s["credits"] * s["p_billed"] * s["p_reached"] for s in out["plan"]), abs=1e-5
    )
    assert out["expected_seconds"] >= first["latency_mean"] > first["latency_p50"]
    assert len(out["plan"]) + len(out["dropped"]) == 12


def test_explain_max_credits_caps_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    """--max-credits drops every model over the cap, saying so."""
    out = run_json(capsys, "explain", "a red fox", "--max-credits", "3.8")
    assert [s["model"] for s in out["plan"]] == [SEEDREAM]
    reasons = {d["model"]: d["reason"] for d in out["dropped"]}
    assert "over the cap of 3.8" in reasons["google/nano-banana"]


def test_explain_edit_and_remove_background(capsys: pytest.CaptureFixture[str]) -> None:
    """--image makes an edit (only edit models); --task remove-background plans only Recraft."""
    out = run_json(capsys, "explain", "make it night", "--image", "https://example.com/a.png")
    assert out["intent"][0] == "edit"
    from kierouter import load_registry

    cards = load_registry().cards
    assert out["plan"] and all("edit" in cards[s["model"]].task_kinds for s in out["plan"])
    out = run_json(
        capsys,
        "explain",
        "",
        "--task",
        "remove-background",
        "--image",
        "https://example.com/a.png",
    )
    assert [s["model"] for s in out["plan"]] == ["recraft/remove-background"]


def test_explain_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: a table of steps, the expected credits and success, the dropped list."""
    assert main(["explain", "一只红狐狸"]) == 0
    text = capsys.readouterr().out
    assert "intent generate, chinese" in text
    assert SEEDREAM in text and "expected credits" in text and "P(success)" in text
    assert "dropped:" in text and "does not do generate" in text


def test_explain_uses_a_toml_policy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--config FILE makes its [policies] usable by name, and [defaults] policy the default."""
    config = tmp_path / "k.toml"
    config.write_text(
        '[defaults]\npolicy = "nano"\n[policies.nano]\nextends = "budget"\n'
        '[policies.nano.constraints]\nallow = ["nano-banana"]\n',
        encoding="utf-8",
    )
    out = run_json(capsys, "explain", "a fox", "--config", str(config))
    assert out["policy"] == "nano"
    assert out["plan"][0]["model"] == "google/nano-banana"
    assert {s["family"] for s in out["plan"]} == {"nano-banana"}


def test_unknown_policy_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown policy name exits 2 and lists the known ones."""
    assert main(["explain", "a fox", "--policy", "cheapest"]) == 2
    assert "known policies: artistic, auto, budget" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "credits", "usd"),
    [
        ((), 350.0, 1.75),
        (("--upscale",), 550.0, 2.75),
        (("--upscale", "--remove-background"), 650.0, 3.25),
    ],
)
def test_cost_calculator(
    capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], credits: float, usd: float
) -> None:
    """The sheet's calculator: 100 budget images × 3.5 = 350 credits ≈ $1.75, + 2 an upscale,
    + 1 a background removal; expected and worst case are never below the first choice."""
    out = run_json(capsys, "cost", "--count", "100", "--policy", "budget", *flags)
    total = out["total"]
    assert total["credits"] == credits and total["usd"] == usd
    assert total["credits"] <= total["expected_credits"] <= total["worst_case_credits"]
    assert out["steps"][0]["model"] == SEEDREAM
    assert [s["step"] for s in out["steps"]][1:] == [f.lstrip("-") for f in flags]


def test_cost_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    """The human output reads like the sheet's calculator."""
    assert main(["cost", "--count", "100", "--policy", "budget"]) == 0
    assert "100 images × 3.5 = 350 credits ≈ $1.75" in capsys.readouterr().out


def test_cost_refuses_a_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    """--count 0 is a validation error (exit 2)."""
    assert main(["cost", "--count", "0"]) == 2
    assert "count" in capsys.readouterr().err


def test_generate_uses_the_toml_defaults(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`kierouter generate --sim` in a folder with kierouter.toml takes its [defaults] policy
    (a [policies] table) and out_dir."""
    (tmp_path / "kierouter.toml").write_text(
        '[defaults]\npolicy = "nano-only"\nout_dir = "from-config"\n'
        '[policies.nano-only]\nextends = "budget"\n'
        '[policies.nano-only.constraints]\nallow = ["google/nano-banana"]\n',
        encoding="utf-8",
    )
    out = run_json(capsys, "generate", "a red fox", "--sim", "--time-scale", "200")
    assert out["served_model"] == "google/nano-banana"
    assert Path(out["files"][0]["path"]).parent == tmp_path / "from-config"
