"""The CLI entry point's own behaviour, whatever the command."""

from __future__ import annotations

import os
import sys

import pytest

from kierouter.cli import main


def test_a_closed_pipe_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kierouter models | head -1``: when the reader has gone, the command stops with 141 (as
    a process killed by SIGPIPE) and no traceback, instead of a BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", buffering=1) as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert main(["models"]) == 141
        monkeypatch.undo()
    assert "Traceback" not in capsys.readouterr().err
