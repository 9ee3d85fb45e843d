"""``kierouter batch``: plan output and JSON, exit codes, line-numbered errors, status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kierouter.cli import main


def _prompts(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("".join(f"a red fox, study {i}\n" for i in range(n)))
    return path


def test_plan_prints_models_credits_usd_worst_case_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``batch plan`` names the first model of each job, the expected and worst-case credits
    with their USD, and a time estimate; --json carries the same numbers."""
    path = _prompts(tmp_path)
    assert main(["batch", "plan", str(path)]) == 0
    text = capsys.readouterr().out
    assert "3 rows, 3 jobs" in text and "expected:" in text and "worst case:" in text
    assert "$" in text and "at 20 per 10 s" in text
    assert main(["batch", "plan", str(path), "--json", "--create-rate", "5"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["rows"] == 3 and plan["create_limit"] == 5
    assert plan["expected_usd"] == pytest.approx(plan["expected_credits"] * 0.005, abs=1e-3)
    assert plan["worst_case_credits"] >= plan["expected_credits"] > 0
    assert sum(m["jobs"] for m in plan["per_model"].values()) == 3


def test_over_budget_and_bad_rows_exit_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan over --budget exits 2 (plan and run; run creates no folder); bad rows exit 2
    naming their lines."""
    path = _prompts(tmp_path)
    assert main(["batch", "plan", str(path), "--budget", "1"]) == 2
    assert "exceeds" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["batch", "run", str(path), "--out", str(out), "--sim", "--budget", "1"]) == 2
    assert "over the budget of 1" in capsys.readouterr().err
    assert not out.exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": "x", "seed": "soon"}\n')
    assert main(["batch", "run", str(bad), "--out", str(out), "--sim"]) == 2
    assert "line 2: seed: must be an integer" in capsys.readouterr().err


def test_run_with_sim_then_status_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``batch run --sim`` finishes (exit 0) with a JSON report and plain progress lines;
    ``status --json`` reads the journal; running into the same folder again is refused with a
    pointer to resume."""
    path = _prompts(tmp_path)
    out = tmp_path / "out"
    args = ["batch", "run", str(path), "--out", str(out), "--sim", "--time-scale", "200"]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    # not a terminal: plain progress lines on stderr, the last one the finished counts
    assert re.match(r"\[\d+s\] 3/3 done · [\d.]+ credits", captured.err.splitlines()[-1])
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", captured.err)  # no control characters
    assert report["complete"] and report["counts"]["downloaded"] == 3 and report["spent"] > 0
    assert main(["batch", "status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["complete"] and status["creates"] == 3 and status["unknown"] == []
    assert main(["batch", "status", str(out)]) == 0
    assert "complete" in capsys.readouterr().out
    assert main(args) == 2
    assert "batch resume" in capsys.readouterr().err
    assert main(["batch", "status", str(tmp_path / "nothing")]) == 2


def test_configuration_file_sets_batch_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--config``: ``[batch]`` sets the create limit, the pipeline after generate and the
    output folder; ``[policies]`` names a policy rows can use; the command line still wins."""
    config = tmp_path / "kierouter.toml"
    out = tmp_path / "from-config"
    config.write_text(
        "[batch]\n"
        "create_rate = 7\n"
        'pipeline = ["upscale"]\n'
        f'out_dir = "{out.as_posix()}"\n'
        "[policies.cheap]\n"
        'extends = "budget"\n'
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "a fox", "policy": "cheap"}\n{"prompt": "a cat"}\n')
    assert main(["batch", "plan", str(rows), "--config", str(config), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["create_limit"] == 7 and plan["rows"] == 2
    assert "recraft/crisp-upscale" in plan["per_model"]
    assert main(["batch", "plan", str(rows), "--config", str(config), "--create-rate", "3",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["create_limit"] == 3
    args = ["batch", "run", str(rows), "--config", str(config), "--sim", "--time-scale", "200"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["out_dir"] == str(out.resolve()) and report["counts"]["downloaded"] == 4
    assert (out / "row-1-upscale-1.png").exists()


def test_a_configuration_file_keeps_the_command_line_defaults_it_does_not_set(
    tmp_path: Path,
) -> None:
    """A ``kierouter.toml`` without ``[batch]`` settings leaves ``batch run`` with the same
    defaults as no file at all (concurrency was silently 8 instead of 100)."""
    import argparse

    from kierouter._config import load_config
    from kierouter.cli._batch_settings import settings_for

    config = tmp_path / "kierouter.toml"
    config.write_text('[defaults]\npolicy = "budget"\n')
    args = argparse.Namespace()
    with_file = settings_for(args, load_config(config))
    without = settings_for(args, None)
    assert with_file.concurrency == without.concurrency
    assert with_file.create_limit == without.create_limit
    assert with_file.create_window == without.create_window
