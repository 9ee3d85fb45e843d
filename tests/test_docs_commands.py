"""Every `kierouter ...` command line shown in the docs is accepted by the real CLI parser."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
import textwrap
from pathlib import Path

import pytest

from kierouter.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
# a fenced block, also indented inside a content tab (=== "CLI")
_CONSOLE = re.compile(r"^( *)```console\n(.*?)^\1```$", re.S | re.M)


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for each `$ ... kierouter ...` line in a console block."""
    found = []
    for page in PAGES:
        for _, block in _CONSOLE.findall(page.read_text("utf-8")):
            for line in textwrap.dedent(block).replace("\\\n", " ").splitlines():
                if not line.startswith("$ "):
                    continue
                words = shlex.split(line[2:], comments=True)
                while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before a command
                    words = words[1:]
                if words[:2] == ["uv", "run"]:
                    words = words[2:]
                if words and Path(words[0]).name == "kierouter":
                    found.append((f"{page.relative_to(ROOT)}: {line[2:]}", words[1:]))
    return found


COMMAND_LINES = documented_commands()


def _built(command: str) -> bool:
    """Whether the command's module exists (the CLI skips commands not built yet)."""
    try:
        importlib.import_module(COMMANDS[command])
    except ModuleNotFoundError as exc:
        if exc.name == COMMANDS[command]:
            return False
        raise
    return True


def test_the_docs_show_commands() -> None:
    """The extraction finds the docs' command lines (guards against a silent regex break)."""
    assert len(COMMAND_LINES) > 30


@pytest.mark.parametrize(("where", "argv"), COMMAND_LINES, ids=[w for w, _ in COMMAND_LINES])
def test_documented_command_parses(where: str, argv: list[str]) -> None:
    """The command exists and the CLI accepts these arguments."""
    if argv and argv[0] in COMMANDS and not _built(argv[0]):
        pytest.skip(f"`kierouter {argv[0]}` is not built in this checkout yet")
    parser = build_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}\n{errors.getvalue()}" if exc.code else f"{where}: exited")


_INSTALL = re.compile(r"^\s*(?:\$ )?(?:uv )?pip install (.+)$", re.M)
_BLOCK = re.compile(r"^( *)```(?:console|bash|shell)\n(.*?)^\1```$", re.S | re.M)


def test_install_lines_do_not_ask_a_package_index_for_kierouter() -> None:
    """No install command in the docs or a plugin's README fetches kierouter or a plugin by bare
    name: none is on a package index yet, so such a line fails as written."""
    readmes = sorted((ROOT / "plugins").glob("*/README.md"))
    wrong = []
    for page in [*PAGES, *readmes]:
        for _, block in _BLOCK.findall(page.read_text("utf-8")):
            for args in _INSTALL.findall(block.replace("\\\n", " ")):
                bare = [a for a in shlex.split(args) if re.fullmatch(r"kierouter(-[\w-]+)?", a)]
                if bare:
                    wrong.append(f"{page.relative_to(ROOT)}: pip install {args}")
    assert wrong == []
