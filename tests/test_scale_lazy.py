"""The scale-out extra stays optional: nothing imports DBOS or psycopg until ``--db`` asks."""

from __future__ import annotations

import subprocess
import sys


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
