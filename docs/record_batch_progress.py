"""Record docs/assets/batch-progress.svg: a real batch, in progress, as a terminal shows it.

Runs ``kierouter batch run`` against the built-in emulator in a pseudo-terminal (pexpect), feeds
what it draws to a terminal emulator (pyte), takes the screen once the bar is about half way,
and saves that screen as an SVG with rich's ``Console(record=True).save_svg``. Nothing is
drawn by hand: the picture is the CLI's own output.

Usage::

    uv run python docs/record_batch_progress.py                  # rewrite the SVG
    uv run python docs/record_batch_progress.py OUT.svg --columns 80
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pexpect
import pyte
from rich.console import Console
from rich.style import Style
from rich.text import Text

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "assets" / "batch-progress.svg"
PROMPTS = [
    "a red fox in snow, watercolor",
    "a lighthouse at dawn, oil painting",
    "a product shot of a ceramic mug",
    "a poster that says OPEN",
    "a cat asleep on a windowsill",
]
COMMAND = "kierouter batch run prompts.txt --out out --sim --budget 500"


def _color(value: str) -> str | None:
    if value == "default":
        return None
    if len(value) == 6 and all(c in "0123456789abcdefABCDEF" for c in value):
        return f"#{value}"
    return value.replace("bright", "bright_") if value.startswith("bright") else value


def _screen_text(screen: pyte.Screen) -> Text:
    """The screen's lines, with the colours the CLI drew, as one rich Text."""
    text = Text()
    rows = [y for y in range(screen.lines) if screen.display[y].strip()]
    for y in range(max(rows) + 1 if rows else 0):
        line = screen.buffer[y]
        for x in range(screen.columns):
            char = line[x]
            style = Style(color=_color(char.fg), bgcolor=_color(char.bg), bold=char.bold)
            text.append(char.data, style=style)
        text.rstrip()
        text.append("\n")
    return text


def record(out: Path, columns: int, rows: int = 40) -> Path:
    """Run the batch, capture the screen mid-run, save the SVG; returns ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        lines = [f"{PROMPTS[i % len(PROMPTS)]}, take {i // len(PROMPTS) + 1}" for i in range(60)]
        (work / "prompts.txt").write_text("\n".join(lines) + "\n")
        env = {**os.environ, "TERM": "xterm-256color", "KIEROUTER_HOME": str(work / "home")}
        env.pop("COLUMNS", None)
        screen = pyte.Screen(columns, rows)
        stream = pyte.Stream(screen)
        stream.feed(f"$ {COMMAND}\r\n")
        args = [*COMMAND.split()[1:], "--time-scale", "20"]  # KIE's own create limit
        child = pexpect.spawn(
            sys.executable, ["-m", "kierouter.cli", *args], env=env, cwd=str(work),
            dimensions=(rows, columns), encoding="utf-8", timeout=180,
        )  # fmt: skip
        try:
            while True:
                stream.feed(child.read_nonblocking(65536, timeout=180))
                shown = "\n".join(screen.display)
                done = next((w for w in shown.split() if "/60" in w), "0/60")
                if int(done.split("/")[0] or 0) >= 25:  # about half way: the bar mid-run
                    break
        finally:
            child.terminate(force=True)
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=columns, force_terminal=True, file=sink)
        console.print(_screen_text(screen), end="")
    out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(out), title="kierouter batch run")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: where to write and how wide the terminal is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--columns", type=int, default=80)
    args = parser.parse_args(argv)
    print(record(args.out, args.columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
