"""The CLI's logging switches: -v/-vv/-q and KIEROUTER_LOG decide what reaches stderr."""

from __future__ import annotations

import logging

import pytest

from kierouter._logging import configure, level_for
from kierouter.cli import main


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure() touches the root logger: put it back after each test."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    names = ("kierouter", "stamina", "httpx")
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_flags_win_over_the_environment():
    """-q and -v decide; KIEROUTER_LOG only applies when neither is given."""
    assert level_for(0, False, "debug") == logging.DEBUG
    assert level_for(1, False, "error") == logging.INFO
    assert level_for(2, False, None) == logging.DEBUG
    assert level_for(3, True, "debug") == logging.ERROR
    assert level_for(0, False, None) == logging.WARNING


def test_retry_noise_hidden_by_default_and_shown_with_v(capfd):
    """A library's retry warning (stamina) prints nothing by default and shows under -v."""
    configure(0)
    logging.getLogger("stamina").warning("stamina.retry_scheduled")
    logging.getLogger("kierouter.test").warning("a kierouter warning")
    err = capfd.readouterr().err
    assert "stamina.retry_scheduled" not in err
    assert "a kierouter warning" in err
    configure(1)
    logging.getLogger("stamina").warning("stamina.retry_scheduled")
    logging.getLogger("httpx").info("HTTP Request: GET ...")
    err = capfd.readouterr().err
    assert "stamina.retry_scheduled" in err
    assert "HTTP Request" not in err  # request lines need -vv


def test_configure_twice_keeps_one_handler(capfd):
    """Each CLI run in one process replaces its handler instead of stacking another."""
    configure(1)
    configure(1)
    logging.getLogger("kierouter.test").info("once")
    assert capfd.readouterr().err.count("once") == 1


def test_quiet_hides_warnings(capfd):
    """-q leaves errors only."""
    configure(0, quiet=True)
    logging.getLogger("kierouter.test").warning("hidden")
    logging.getLogger("kierouter.test").error("shown")
    err = capfd.readouterr().err
    assert "hidden" not in err and "shown" in err


def test_bad_kierouter_log_is_a_usage_error(monkeypatch, capsys):
    """An unknown KIEROUTER_LOG value exits 2 naming the variable and the allowed levels."""
    monkeypatch.setenv("KIEROUTER_LOG", "loud")
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert "KIEROUTER_LOG" in err and "debug" in err
