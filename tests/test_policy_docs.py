"""docs/policies.md is true: its Python examples run, its TOML example loads, and it documents
every key the configuration accepts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from kierouter import Pricing
from kierouter._config import (
    BatchSettings,
    Defaults,
    PollingSettings,
    WebhookSettings,
    parse_config,
)
from kierouter.policy import BUILTIN_POLICIES, Budget, Constraints, Objective, Policy

PAGE = Path(__file__).resolve().parents[1] / "docs" / "policies.md"
TEXT = PAGE.read_text("utf-8")


def block(heading: str, lang: str) -> str:
    """The first ``lang`` code block after ``heading``."""
    start = TEXT.index(heading)
    found = re.search(rf"^```{lang}\n(.*?)^```$", TEXT[start:], re.S | re.M)
    assert found, heading
    return found.group(1)


def fields(cls: type) -> set[str]:
    return {f.name for f in msgspec.structs.fields(cls)}


def test_compose_example_runs() -> None:
    """The 'compose a built-in' example runs and builds what it says."""
    namespace: dict[str, Any] = {}
    exec(block("### In Python: compose a built-in", "python"), namespace)
    frugal = namespace["frugal"]
    budget = BUILTIN_POLICIES["budget"]
    assert frugal.name == "frugal" and frugal.max_steps == 2
    assert frugal.constraints.deny == ("nano-banana",) and frugal.constraints.max_credits == 5
    assert frugal.constraints.min_quality == budget.constraints.min_quality
    assert namespace["thrifty"].ordering == "expected-cost"
    plan = namespace["plan"]
    assert plan.policy == "frugal" and len(plan.models) <= 2
    assert all(step.family != "nano-banana" and step.credits <= 5 for step in plan.steps)


def test_other_python_examples_run() -> None:
    """The ladder, learning, from-scratch and plugin examples run."""
    for heading in (
        "### The ladder",
        "## Learning from outcomes",
        "### In Python: from scratch",
        "### From a plugin",
    ):
        namespace: dict[str, Any] = {}
        exec(block(heading, "python"), namespace)
    assert isinstance(namespace["kierouter_register_policies"], object)


def test_toml_example_loads_and_documents_every_key() -> None:
    """The TOML example loads, its policy resolves, and it shows every key of every table."""
    source = block("## The TOML format", "toml")
    data = tomllib.loads(source)
    config = parse_config(data)
    posters = config.policy("posters")
    assert posters.constraints.require == ("text",) and posters.objective.by == "weighted"
    assert posters.options_by_intent == {"anime": {"midjourney": {"version": "niji6"}}}
    table = data["policies"]["posters"]
    assert set(table) == (fields(Policy) - {"name"}) | {"extends"}
    assert set(table["constraints"]) == fields(Constraints)
    assert set(table["objective"]) == fields(Objective)
    assert set(table["budget"]) == fields(Budget)
    assert set(data["prices"]["bytedance/seedream-v4-text-to-image"]) == fields(Pricing)
    assert set(data["defaults"]) == fields(Defaults)
    assert set(data["webhook"]) == fields(WebhookSettings)
    assert set(data["polling"]) == fields(PollingSettings)
    assert set(data["batch"]) == fields(BatchSettings)


def test_builtin_table_names_every_builtin() -> None:
    """Every built-in policy is in the page's table."""
    for name in BUILTIN_POLICIES:
        assert f"| `{name}`" in TEXT
