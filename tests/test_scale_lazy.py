"""The scale-out extra stays optional: nothing imports DBOS or psycopg until ``--db`` asks."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def test_import_and_the_cli_parser_load_no_dbos_and_no_psycopg() -> None:
    """``import kierouter``, ``kierouter.scale`` and the full CLI parser (with the ``worker``
    command and the ``--db`` options) load neither DBOS nor psycopg."""
    code = (
        "import sys, kierouter, kierouter.scale; from kierouter.cli import build_parser; "
        "build_parser(); print(sorted(m for m in ('dbos', 'psycopg', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _cli(*args: str, tmp: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KIE_")}
    return subprocess.run(
        [sys.executable, "-m", "kierouter.cli", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp,
    )  # fmt: skip


def test_db_runs_refuse_an_in_process_emulator_before_anything_runs(tmp_path: Any) -> None:
    """Every worker must reach the same emulator: ``--db`` with ``--sim`` (one emulator per
    process) is refused with a clear message before any database is touched (the URL given
    answers nothing)."""
    import pytest

    pytest.importorskip("dbos", reason="kierouter[scale] is not installed")
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    dead = "postgresql://postgres@127.0.0.1:9/none"
    run = _cli("batch", "run", str(prompts), "--out", "out", "--db", dead, "--sim", tmp=tmp_path)
    assert run.returncode == 2 and "--sim-url" in run.stderr
    worker = _cli("worker", "--db", dead, "--sim", tmp=tmp_path)
    assert worker.returncode == 2 and "--sim-url" in worker.stderr
    assert not (tmp_path / "out").exists()
