"""docs/emulator.md describes the emulator's whole public surface and its examples work: every
setting, model setting, fault kind, path, admin route and stats field is named there, every
scenario example loads, and the Python example runs."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kierouter.sim import FAULT_KINDS, PATH_KINDS, Emulator, Scenario
from kierouter.sim._admin import EMULATOR_SETTINGS, MODEL_SETTINGS
from kierouter.sim._open_models import MARKET_MODEL_KEYS
from kierouter.sim._scenario import DEFAULT_KEYS, MODEL_KEYS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "emulator.md"
TEXT = PAGE.read_text("utf-8")
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
BLOCKS = _BLOCK.findall(TEXT)


def named(word: str) -> bool:
    """Whether the page names ``word`` as code."""
    return f"`{word}`" in TEXT or f'"{word}"' in TEXT or f"{word} =" in TEXT


def emulator_arguments() -> list[str]:
    """Emulator's keyword arguments other than where it listens."""
    names = inspect.signature(Emulator.__init__).parameters
    return [n for n in names if n not in ("self", "host", "port", "scenario")]


@pytest.mark.parametrize(
    "word",
    sorted(
        {*DEFAULT_KEYS, *MODEL_KEYS, *EMULATOR_SETTINGS, *MODEL_SETTINGS, *FAULT_KINDS}
        | {*MARKET_MODEL_KEYS, "market_models"}
        | {*PATH_KINDS, *emulator_arguments()}
    ),
)
def test_every_setting_and_fault_is_documented(word: str) -> None:
    """Each scenario key, admin setting, Emulator argument, fault kind and path is named."""
    assert named(word), f"docs/emulator.md does not describe {word!r}"


def test_every_stats_field_and_admin_route_is_documented() -> None:
    """Each field stats() returns and each route of the admin API is on the page."""
    fields = set(Emulator().stats())
    missing = sorted(f for f in fields if f"`{f}`" not in TEXT)
    assert not missing, f"stats fields not documented: {missing}"
    source = Path(__file__).resolve().parents[1] / "kierouter" / "sim" / "_admin.py"
    routes = set(re.findall(r'\("(GET|POST)", "(/_sim/\w+)"\)', source.read_text("utf-8")))
    assert len(routes) >= 8
    for method, path in routes:
        assert f"`{method} {path}" in TEXT, f"{method} {path} is not documented"


@pytest.mark.parametrize("n", [n for n, (lang, _) in enumerate(BLOCKS) if lang == "toml"])
def test_scenario_examples_load(n: int) -> None:
    """Every TOML example on the page is a valid scenario."""
    Scenario.from_dict(tomllib.loads(BLOCKS[n][1]), source=f"docs/emulator.md block {n}")


def test_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """The first Python example defines main(), which runs; the others compile."""
    first, *others = [block for lang, block in BLOCKS if lang == "python"]
    namespace: dict[str, Any] = {}
    exec(compile(first, str(PAGE), "exec"), namespace)
    asyncio.run(namespace["main"]())
    assert capsys.readouterr().out.startswith("0")
    assert others
    for code in others:
        compile(code, str(PAGE), "exec")


def test_market_model_example_is_the_documented_format() -> None:
    """The page's [market_models] example and the pytest example's dict declare the same model."""
    toml = next(b for lang, b in BLOCKS if lang == "toml" and "[market_models." in b)
    declared = Scenario.from_dict(tomllib.loads(toml)).market_models
    python = next(b for lang, b in BLOCKS if lang == "python" and "market_models" in b)
    literal = python[python.index("ACME = ") + len("ACME = ") : python.index("\n\n\n@")]
    as_dict = Scenario.from_dict(ast.literal_eval(literal)).market_models
    assert declared.keys() == as_dict.keys() == {"acme/imagine-1"}
    assert declared["acme/imagine-1"].rules == as_dict["acme/imagine-1"].rules
