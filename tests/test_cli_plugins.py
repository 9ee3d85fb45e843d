"""`kierouter plugins` shows each plugin's load time (flagging a slow one) and its errors, with
the traceback under `-v` and in `--json`; `KIEROUTER_TRACE_PLUGINS` shows every hook call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SLOW = "import time\ntime.sleep(0.15)  # a heavy import, say\n"

FAILING = """
from kierouter import hookimpl

def _read_settings():
    raise KeyError("ACME_REGION")

@hookimpl
def kierouter_register_models(register):
    _read_settings()
"""


@pytest.fixture
def site(plugin_site: Any) -> Path:
    """A directory of entry-point plugins: a good one, a slow one, one failing in its hook and
    one failing at import."""
    plugin_site.add_good("kr_good", "kr/good")
    plugin_site.add("kr_slow", SLOW + plugin_site.GOOD.format(model="kr/slow"))
    plugin_site.add("kr_failing", FAILING)
    plugin_site.add("kr_no_dep", "import json\nimport acme_sdk_not_installed\n")
    path: Path = plugin_site.path
    return path


def _cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "KIEROUTER_"))}
    clean.update(
        PYTHONPATH=os.pathsep.join([str(site), *sys.path]),
        KIEROUTER_LOAD_PLUGINS="kr_good,kr_slow,kr_failing,kr_no_dep",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "kierouter.cli", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=site,
    )


def test_verbose_plugins_shows_load_times_slow_flag_and_traceback(site: Path) -> None:
    """`kierouter -v plugins`: every plugin has its load time, the slow one is flagged, and the
    failing one's error comes with its traceback down to the line that raised."""
    done = _cli(site, "-v", "plugins")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("kr_")}
    assert set(rows) == {"kr_good", "kr_slow", "kr_failing", "kr_no_dep"}
    assert all(" ms" in row for row in rows.values())
    assert "SLOW" in rows["kr_slow"]
    assert "KeyError: 'ACME_REGION'" in rows["kr_failing"]
    assert "SLOW: kr_slow took over 100 ms to load" in done.stdout
    assert "Traceback (most recent call last)" in done.stderr
    assert 'kr_failing.py", line 5, in _read_settings' in done.stderr
    assert "plugin 'kr_slow' took" in done.stderr  # any command says so under -v
    assert "kr_slow': imported kr_slow in" not in done.stderr  # no trace unless asked


def test_without_verbose_the_error_is_one_line_with_a_hint(site: Path) -> None:
    """Without -v the failure is one line, and the output says how to see the traceback."""
    done = _cli(site, "plugins")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "kierouter -v plugins shows each failure's traceback" in done.stdout


def test_json_carries_load_time_and_tracebacks(site: Path) -> None:
    """`plugins --json` has load_ms and slow for every plugin, and the failing one's
    traceback."""
    done = _cli(site, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins["kr_slow"]["slow"] is True and plugins["kr_slow"]["load_ms"] >= 150
    assert isinstance(plugins["kr_good"]["load_ms"], float)
    assert plugins["kr_good"]["error"] is None and plugins["kr_good"]["tracebacks"] == []
    failing = plugins["kr_failing"]
    assert failing["errors"] == ["kierouter_register_models raised KeyError: 'ACME_REGION'"]
    [trace] = failing["tracebacks"]
    assert trace.startswith("Traceback") and "in _read_settings" in trace
    # the traceback starts at the plugin's own code, not in the host or importlib
    [trace] = plugins["kr_no_dep"]["tracebacks"]
    first_frame = trace.splitlines()[1]
    assert first_frame.endswith('kr_no_dep.py", line 2, in <module>'), trace


def test_trace_shows_every_hook_call_with_its_duration(site: Path) -> None:
    """KIEROUTER_TRACE_PLUGINS with -v logs each import and hook call, with its duration."""
    done = _cli(site, "-v", "plugins", KIEROUTER_TRACE_PLUGINS="1")
    assert done.returncode == 0, done.stderr
    assert "plugin 'kr_slow': imported kr_slow in" in done.stderr
    for name in ("kr_good", "kr_slow", "kr_failing"):
        assert f"plugin '{name}': kierouter_register_models took" in done.stderr
