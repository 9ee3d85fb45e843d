"""`kierouter logs` (the job history), `kierouter keys` (stored secrets), and the tables and
JSON the commands print."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kierouter import Router
from kierouter.cli import main
from kierouter.cli.logs import parse_since
from kierouter.sim import Emulator

NANO = "google/nano-banana"


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test its own KIEROUTER_HOME, no key in the environment, no stray config."""
    home = tmp_path / "home"
    monkeypatch.setenv("KIEROUTER_HOME", str(home))
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    monkeypatch.delenv("KIEROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def test_generate_and_batch_jobs_are_logged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, home: Path, cli_json: Callable[..., Any]
) -> None:
    """Each generate and each batch job is a row: prompt, policy, served model, attempts,
    credits, files, job key, task ids, marked as run against the emulator; --no-log leaves a
    run out; --model and -n filter."""
    made = cli_json("generate", "a red fox", "--sim", "--time-scale", "200", "-q",
                    "--policy", "budget", "--job-key", "fox-1")  # fmt: skip
    cli_json("generate", "not logged", "--sim", "--time-scale", "200", "-q", "--no-log")
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat\na dog\n")
    cli_json("batch", "run", str(prompts), "--out", "b", "--sim", "--time-scale", "200",
             "--model", NANO, "-q")  # fmt: skip
    logged = cli_json("logs")
    assert [e["prompt"] for e in logged] == ["a dog", "a cat", "a red fox"] or {
        e["prompt"] for e in logged
    } == {"a dog", "a cat", "a red fox"}
    fox = next(e for e in logged if e["job_key"] == "fox-1")
    assert fox["served_model"] == made["served_model"] and fox["policy"] == "budget"
    assert fox["credits"] == made["credits"] and fox["emulated"] and fox["ok"]
    assert fox["files"] == [f["path"] for f in made["files"]]
    assert fox["task_ids"] == [a["task_id"] for a in made["attempts"] if a["task_id"]]
    assert fox["attempts"][0]["model"] == made["attempts"][0]["model"]
    batch = [e for e in logged if e["source"] == "batch"]
    assert {e["served_model"] for e in batch} == {NANO} and len(batch) == 2
    assert [e["prompt"] for e in cli_json("logs", "--model", NANO)] != []
    assert {e["served_model"] for e in cli_json("logs", "--model", NANO)} == {NANO}
    assert len(cli_json("logs", "-n", "1")) == 1
    assert (home / "logs.db").exists()


def test_cost_sums_by_day_and_model(
    capsys: pytest.CaptureFixture[str], cli_json: Callable[..., Any]
) -> None:
    """--cost sums credits by day and model; emulator jobs only with --include-sim, and the
    human output says how many were left out."""
    made = cli_json("generate", "a red fox", "--sim", "--time-scale", "200", "-q")
    assert cli_json("logs", "--cost")["credits"] == 0
    sums = cli_json("logs", "--cost", "--include-sim")
    (day,) = sums["days"]
    assert day["model"] == made["served_model"] and day["credits"] == made["credits"]
    assert day["jobs"] == 1 and sums["usd"] == pytest.approx(made["credits"] * 0.005)
    assert main(["logs", "--cost"]) == 0
    assert "1 emulator job not counted" in capsys.readouterr().out
    assert cli_json("logs", "--since", "1h") != []
    assert cli_json("logs", "--since", "2999-01-01") == []


def test_an_empty_filter_is_not_an_empty_log(
    capsys: pytest.CaptureFixture[str], cli_json: Callable[..., Any]
) -> None:
    """When jobs were logged but --model matches none, logs says so, not 'no jobs yet'."""
    cli_json("generate", "a red fox", "--sim", "--time-scale", "200", "-q")
    assert main(["logs", "--model", "midjourney"]) == 0
    out = capsys.readouterr().out
    assert "no jobs recorded yet" not in out and "matches" in out
    assert main(["logs"]) == 0 and "a red fox" in capsys.readouterr().out


def test_since_parses_dates_and_ages(capsys: pytest.CaptureFixture[str]) -> None:
    """--since takes an age (90m, 12h, 7d, 2w) or an ISO date; anything else is a usage error."""
    assert parse_since("12h", now=100_000.0) == 100_000.0 - 12 * 3600
    assert parse_since("2w", now=2e6) == 2e6 - 14 * 86400
    assert parse_since("2026-05-01T00:00") < parse_since("2026-05-02")
    assert main(["logs", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


async def test_router_log_true_records_library_jobs_and_no_secret(home: Path) -> None:
    """Router(log=True) records each job; the API key is nowhere in the database."""
    secret = "library-secret-key-0123456789"
    async with (
        Emulator(time_scale=200, api_key=secret) as emu,
        Router(base_url=emu.base_url, api_key=secret, allow_private_downloads=True,
               latency_scale=1 / 200, log=True) as router,
    ):  # fmt: skip
        result = await router.generate("a lighthouse", job_key="lib-1")
    from kierouter._history import History

    (entry,) = History().entries()
    assert entry.job_key == "lib-1" and entry.served_model == result.served_model
    assert entry.emulated and entry.source == "generate"
    assert secret.encode() not in (home / "logs.db").read_bytes()


def test_a_history_that_cannot_be_written_does_not_lose_the_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With KIEROUTER_HOME on a file (no logs.db can be made), generate and a batch still
    finish and print their results (exit 0); the history is a warning naming the database."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("KIEROUTER_HOME", str(blocked))
    sim = ["--sim", "--time-scale", "200"]
    assert main(["generate", "a red fox", *sim, "--out", "g", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["files"] and "could not record job job-" in err
    (tmp_path / "p.txt").write_text("a cat\n")
    assert main(["batch", "run", "p.txt", "--out", "b", *sim, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["complete"] and "could not record job row-1-generate" in err


def test_keys_set_get_remove_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    home: Path,
    cli_json: Callable[..., Any],
) -> None:
    """keys set reads stdin and writes a 0600 file; get shows a masked form (--reveal the
    whole key); KIE_API_KEY wins when set; remove forgets it; path names the file."""
    key = "kie-0123456789abcdef-xyz"
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    assert main(["keys", "set"]) == 0
    path = home / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"kie": key}
    capsys.readouterr()
    assert main(["keys", "get"]) == 0
    shown = capsys.readouterr().out.strip()
    assert shown == "kie-…-xyz" and key not in shown
    assert cli_json("keys", "get", "--reveal")["value"] == key
    monkeypatch.setenv("KIE_API_KEY", "from-the-environment-1")
    got = cli_json("keys", "get")
    assert got["source"] == "$KIE_API_KEY" and got["value"] != key
    assert main(["keys", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert main(["keys", "remove"]) == 0 and json.loads(path.read_text()) == {}
    assert main(["keys", "remove"]) == 1


def test_keys_say_where_a_stored_key_comes_from(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    home: Path,
    cli_json: Callable[..., Any],
) -> None:
    """With KIE_API_KEY unset, `keys get` names the keys file as the key's source, and
    replacing a stored key does not claim that KIE_API_KEY is set and wins."""
    for key in ("kie-first-0123456789", "kie-second-0123456789"):
        monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
        assert main(["keys", "set"]) == 0
    assert "KIE_API_KEY" not in capsys.readouterr().err
    assert cli_json("keys", "get")["source"] == str(home / "keys.json")
    assert "KIE_API_KEY" not in os.environ


def test_a_stored_key_is_used_when_the_environment_has_none(
    threaded_emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cli_json: Callable[..., Any],
) -> None:
    """With KIE_API_KEY unset, `credits` uses the key `keys set` stored."""
    monkeypatch.setenv("KIE_BASE_URL", threaded_emu.base_url)
    assert main(["credits"]) == 3
    monkeypatch.setattr(sys, "stdin", io.StringIO(threaded_emu.api_key + "\n"))
    assert main(["keys", "set"]) == 0
    assert cli_json("credits")["credits"] == threaded_emu.balance
    monkeypatch.delenv("KIE_API_KEY")  # main() exported the stored key into this process


def test_tables_fit_the_width_and_right_align_numbers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """models, explain and cost fit 80 and 60 columns; number columns are right-aligned."""
    for columns in (80, 60):
        monkeypatch.setenv("COLUMNS", str(columns))
        for argv in (["models"], ["explain", "a red fox in snow"], ["cost", "--upscale"]):
            assert main(argv) == 0
            lines = capsys.readouterr().out.splitlines()
            assert max(len(line) for line in lines) <= columns, argv
    monkeypatch.delenv("COLUMNS")
    assert main(["models", "--family", "seedream"]) == 0
    header, _rule, *rows = capsys.readouterr().out.splitlines()
    end = header.index("credits") + len("credits")
    assert all(row[end - 1].isdigit() for row in rows)  # right-aligned under the header


def test_counts_are_pluralised_and_json_floats_rounded(
    threaded_emu: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """'1 image', not '1 images'; JSON floats carry no binary noise (179.9392, not
    179.93919999999997); batch status names the real folder in its resume hint."""
    assert main(["cost", "--count", "1", "--policy", "budget"]) == 0
    assert "\n1 image × 3.5 = 3.5 credits" in capsys.readouterr().out
    from kierouter.cli._common import print_json

    print_json({"credits": 179.93919999999997, "nested": [0.1 + 0.2]})
    assert json.loads(capsys.readouterr().out) == {"credits": 179.9392, "nested": [0.3]}
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    threaded_emu.configure("*", fail_rate=1.0)  # the batch ends incomplete
    run = ["batch", "run", str(prompts), "--out", "b", "--sim-url", threaded_emu.base_url, "-q"]
    assert main([*run, "--time-scale", "200"]) == 1
    assert main(["batch", "status", "b"]) == 0
    out = capsys.readouterr().out
    assert "1 row, 1 job" in out and f"kierouter batch resume {tmp_path / 'b'}" in out


def test_help_shows_defaults_and_what_json_prints(
    capsys: pytest.CaptureFixture[str], cli_json: Callable[..., Any]
) -> None:
    """models --json says it prints an array (it does); --max-skew and sim --time-scale name
    their defaults."""
    assert main(["models", "--help"]) == 0
    assert "JSON array" in capsys.readouterr().out
    assert isinstance(cli_json("models"), list)
    assert main(["webhook", "serve", "--help"]) == 0
    assert "default 300" in capsys.readouterr().out
    assert main(["sim", "--help"]) == 0
    assert "default 1" in capsys.readouterr().out.split("--time-scale")[1]


def test_json_output_does_not_import_rich() -> None:
    """--json keeps rich (terminal drawing) out of the process, as `import kierouter` does."""
    import subprocess

    code = (
        "import sys\nfrom kierouter.cli import main\n"
        "main(['explain', 'a fox', '--json'])\nmain(['models', '--json'])\n"
        "print('rich' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ}, timeout=60)  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "False"
