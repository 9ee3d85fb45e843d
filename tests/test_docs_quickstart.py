"""The quickstart's Python examples (docs/index.md, README.md) run and produce an image.

The examples are written for a real key (``Router(policy="budget", out_dir="out")`` reads
``KIE_API_KEY``). The test runs each block as written, with one change: every ``Router(`` and
``SyncRouter(`` call may also download from an emulator on loopback, which ``KIE_BASE_URL`` and
``KIE_API_KEY`` point at (a block that starts its own emulator runs unchanged).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kierouter.sim import in_thread

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "docs" / "index.md", ROOT / "README.md")
# a fenced block, also indented inside a content tab (=== "Python")
_PYTHON = re.compile(r"^( *)```python\n(.*?)^\1```$", re.S | re.M)
_CALL = re.compile(r"\b(Sync)?Router\(")

BLOCKS = [
    (f"{page.name}#{n}", textwrap.dedent(block))
    for page in PAGES
    for n, (_, block) in enumerate(_PYTHON.findall(page.read_text("utf-8")), start=1)
]


@pytest.fixture(scope="module")
def emulator() -> Any:
    """One emulator (in its own thread, so sync examples can use it too) for every block."""
    with in_thread(time_scale=200) as emu:
        yield emu


def test_the_pages_have_examples() -> None:
    """Both pages show library code, async and sync (guards the extraction)."""
    code = "\n".join(block for _, block in BLOCKS)
    assert "asyncio.run(" in code
    assert "SyncRouter(" in code
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_example_runs(
    where: str,
    code: str,
    emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The block runs to the end and, when it writes images, writes them under its out_dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIE_API_KEY", emulator.api_key)
    monkeypatch.setenv("KIE_BASE_URL", emulator.base_url)
    sim = {"allow_private_downloads": True, "latency_scale": 1 / 200}
    # a block that starts its own emulator already says where it is
    patched = code if "Emulator(" in code else _CALL.sub(lambda m: f"{m.group(0)}**_SIM, ", code)
    exec(compile(patched, where, "exec"), {"__name__": "__main__", "_SIM": sim})
    printed = capsys.readouterr().out
    if "print(" in code:
        assert printed.strip(), f"{where} printed nothing"
    if 'out_dir="out"' in code:
        assert list((tmp_path / "out").glob("*.png")), f"{where} wrote no image to out/"
