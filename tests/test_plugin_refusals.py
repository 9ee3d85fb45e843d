"""What a plugin registers is checked at load: a bad card (values or types), a misspelled or
undecorated hook, an unknown name in the allow/block lists are each refused by name and recorded
as the plugin's error, and the good models, the plugin's own and everyone else's, still plan under
every built-in policy and serve a job against the emulator."""

from __future__ import annotations

import math
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kierouter_seedream
import msgspec
import pytest

from kierouter import (
    Capabilities,
    ConfigurationError,
    ImageRequest,
    ModelCard,
    Policy,
    Pricing,
    Registry,
    Router,
    explain,
    hookimpl,
    load_registry,
)
from kierouter.policy import BUILTIN_POLICIES
from kierouter.provider import MarketProvider
from kierouter.sim import Emulator, Scenario

GOOD = ModelCard(
    id="acme/good",
    family="acme",
    task_kinds=("generate",),
    pricing=Pricing(credits=2.0),
    latency_p50=5.0,
    latency_p90=10.0,
    quality=7.0,
)
ACME = Policy(name="acme", ladder=("acme",))
SEEDREAM = Policy(name="seedream-only", ladder=("seedream",))


class _Provider(MarketProvider):
    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Any], bool]:
        return {"prompt": request.prompt}, [], False


def _registering(*cards: Any, name: str = "acme") -> types.SimpleNamespace:
    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        for card in cards:
            register(card, _Provider())

    return types.SimpleNamespace(name=name, kierouter_register_models=kierouter_register_models)


#: teaches the emulator the plugin's good model (kierouter ships nothing like it)
ACME_SCENARIO = {"market_models": {"acme/good": {"price": 2.0, "latency": [5, 10]}}}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator at 1000x speed without the create-rate limit, knowing acme/good."""
    async with Emulator(
        time_scale=1000.0,
        create_limit=500,
        create_window=1.0,
        scenario=Scenario.from_dict(ACME_SCENARIO),
    ) as emulator:
        yield emulator


def assert_good_models_plan(registry: Registry, baseline: Registry | None = None) -> None:
    """Every built-in policy plans exactly as it does over the good cards alone (``baseline``:
    Seedream and, if it loaded, the plugin's good card), with sane numbers; ``budget``,
    ``speed`` and ``auto`` plan something."""
    if baseline is None:
        good = [GOOD] if "acme/good" in registry.cards else []
        baseline = load_registry([_registering(*good), kierouter_seedream], entry_points=False)
    for name in BUILTIN_POLICIES:
        plan = explain("a red fox in snow", name, registry=registry)
        assert plan == explain("a red fox in snow", name, registry=baseline), name
        assert all(math.isfinite(s.credits) and 0 < s.p_success <= 1 for s in plan.steps)
        assert 0 <= plan.p_success <= 1 and plan.expected_credits >= 0, name
        assert plan.steps or name not in ("budget", "speed", "auto"), (name, plan.dropped)
    if "acme/good" in registry.cards:
        assert explain("a red fox", ACME, registry=registry).models == ("acme/good",)


async def assert_good_models_serve(registry: Registry, emu: Emulator, tmp_path: Path) -> None:
    """A Router built from the registry serves a job on a shipped model, and on the plugin's
    good model when it loaded."""
    async with Router(
        registry=registry,
        base_url=emu.base_url,
        api_key=emu.api_key,
        out_dir=tmp_path,
        allow_private_downloads=True,
        latency_scale=1 / 1000,
    ) as router:
        shipped = await router.generate("a red fox in snow", policy=SEEDREAM)
        assert shipped.served_model in kierouter_seedream_models()
        assert len(shipped.files) == 1
        if "acme/good" in registry.cards:
            own = await router.generate("a red fox in snow", policy=ACME)
            assert own.served_model == "acme/good" and len(own.files) == 1


def kierouter_seedream_models() -> set[str]:
    """The shipped Seedream plugin's model ids."""
    return set(load_registry([kierouter_seedream], entry_points=False).cards)


def _load(bad: Any) -> tuple[Registry, str]:
    registry = load_registry([bad, kierouter_seedream], entry_points=False)
    record = {r.name: r for r in registry.plugins}["acme"]
    assert {r.name: r for r in registry.plugins}["kierouter_seedream"].ok
    return registry, " | ".join(record.errors)


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"quality": 15}, "quality 15 is outside the 0-10 scale"),
    ({"quality": float("nan")}, "quality is nan, not a finite number"),
    ({"pricing": Pricing(credits=-5)}, "pricing.credits -5 is negative"),
    ({"pricing": Pricing(credits=1, by_resolution={"4K": -2})}, "by_resolution['4K'] -2"),
    ({"pricing": Pricing(credits=1, by_resolution={"8K": 2})}, "by_resolution has 8K"),
    ({"pricing": Pricing(credits=math.inf)}, "pricing.credits is inf"),
    ({"success_rate": 1.7}, "success_rate 1.7 is not a probability in (0, 1]"),
    ({"success_rate": 0.0}, "success_rate 0 is not a probability"),
    ({"latency_p50": 40.0, "latency_p90": 10.0}, "latency_p50 40 is above latency_p90 10"),
    ({"latency_p50": -1.0}, "must be positive seconds"),
    ({"id": ""}, "id '' must be non-empty"),
    ({"id": "acme/a b"}, "without spaces"),
    ({"family": "acme|x"}, "or '|'"),
    ({"task_kinds": ()}, "task_kinds is empty"),
    ({"task_kinds": ("generate", "generate")}, "repeats a kind"),
    ({"capabilities": Capabilities(max_images=0)}, "capabilities.max_images 0 is below 1"),
    ({"capabilities": Capabilities(aspect_ratios=("wide",))}, "'wide', which is not W:H"),
    ({"capabilities": Capabilities(resolutions=("8K",))}, "resolutions has 8K"),
    ({"capabilities": Capabilities(max_reference_images=-1)}, "is negative"),
    ({"languages": ("EN",)}, "use lowercase ISO codes"),
    ({"languages": ()}, "languages is empty"),
]


@pytest.mark.parametrize(("change", "needle"), BAD_VALUES, ids=[n for _, n in BAD_VALUES])
def test_card_with_bad_values_is_refused_by_name(change: dict[str, Any], needle: str) -> None:
    """A card breaking a documented rule is refused, naming the model and the rule; the same
    plugin's good card loads, and every policy still plans with sane numbers."""
    bad = msgspec.structs.replace(GOOD, **{"id": "acme/bad", **change})
    registry, errors = _load(_registering(GOOD, bad))
    assert f"model {bad.id!r} refused" in errors and needle in errors, errors
    assert bad.id not in registry.cards or bad.id == GOOD.id
    assert registry.cards["acme/good"].plugin == "acme"
    assert_good_models_plan(registry)


BAD_TYPES: list[tuple[dict[str, Any], str]] = [
    ({"latency_p50": "13s"}, "latency_p50: expected `float`, got `str` ('13s')"),
    ({"quality": None}, "quality: expected `float`, got `null`"),
    ({"quality": object()}, "quality: expected `float`, got `object`"),
    ({"task_kinds": ("paint",)}, "task_kinds[0]: invalid enum value 'paint'"),
    ({"task_kinds": "generate"}, "task_kinds: expected `array`, got `str`"),
    (
        {"capabilities": Capabilities(max_images=True)},  # type: ignore[arg-type]
        "capabilities.max_images: expected `int`, got `bool`",
    ),
    ({"pricing": Pricing(credits="5")}, "pricing.credits: expected `float`, got `str`"),  # type: ignore[arg-type]
    ({"strengths": ("text", 3)}, "strengths[1]: expected `str`, got `int`"),
]


@pytest.mark.parametrize(("change", "needle"), BAD_TYPES, ids=[n for _, n in BAD_TYPES])
def test_card_with_bad_types_is_refused_by_name(change: dict[str, Any], needle: str) -> None:
    """A wrongly typed field (``latency_p50="13s"``, an unknown task kind) is refused naming
    the field, instead of breaking planning with a TypeError for every user."""
    bad = msgspec.structs.replace(GOOD, id="acme/bad", **change)
    registry, errors = _load(_registering(GOOD, bad))
    assert "model 'acme/bad' refused" in errors and needle in errors, errors
    assert "acme/bad" not in registry.cards
    assert_good_models_plan(registry)


def test_registered_card_is_a_checked_copy() -> None:
    """The registry keeps its own checked copy: a plugin changing its card's price table after
    registering cannot sneak a bad value past the check."""
    prices: dict[str, float] = {"2K": 3.0}
    card = msgspec.structs.replace(GOOD, pricing=Pricing(credits=2.0, by_resolution=prices))
    registry = load_registry([_registering(card)], entry_points=False)
    prices["2K"] = -100.0
    assert registry.cards["acme/good"].pricing.by_resolution == {"2K": 3.0}


def test_registered_card_keeps_what_the_plugin_wrote_in_the_right_shapes() -> None:
    """Ints stay as written (a table shows 5, not 5.0); a list where a tuple belongs, or a dict
    where a Pricing belongs, is registered as the checked copy, so the planner never sees it."""
    ints = msgspec.structs.replace(GOOD, latency_p50=5, quality=7)
    registry = load_registry([_registering(ints)], entry_points=False)
    assert repr(registry.cards["acme/good"].latency_p50) == "5"
    loose = msgspec.structs.replace(
        GOOD,
        task_kinds=["generate"],  # type: ignore[arg-type]
        pricing={"credits": 2},  # type: ignore[arg-type]
    )
    registry = load_registry([_registering(loose)], entry_points=False)
    kept = registry.cards["acme/good"]
    assert kept.task_kinds == ("generate",) and kept.pricing == Pricing(credits=2.0)
    assert explain("a fox", ACME, registry=registry).models == ("acme/good",)


def test_bad_price_override_from_configuration_is_refused() -> None:
    """[prices."model"] in kierouter.toml goes through the same rules."""
    registry = load_registry([_registering(GOOD)], entry_points=False)
    config = types.SimpleNamespace(pricing={"acme/good": Pricing(credits=-1)}, policies={})
    with pytest.raises(ConfigurationError, match=r'prices."acme/good": pricing.credits -1'):
        explain("a fox", ACME, registry=registry, config=config)
    with pytest.raises(ConfigurationError, match=r'prices."acme/good": pricing.credits -1'):
        registry.with_pricing(config.pricing)


def test_badly_typed_policy_is_refused() -> None:
    """A registered policy whose fields have the wrong types is refused by name."""

    @hookimpl
    def kierouter_register_policies(register: Any) -> None:
        register(Policy(name="broken", max_steps="3"))  # type: ignore[arg-type]
        register(ACME)

    plugin = types.SimpleNamespace(
        name="acme", kierouter_register_policies=kierouter_register_policies
    )
    registry = load_registry([plugin], entry_points=False)
    assert "policy 'broken' refused: max_steps: expected `int`" in registry.plugins[0].errors[0]
    assert list(registry.policies) == ["acme"]


# -- hooks -------------------------------------------------------------------------------------


def _misspelled() -> types.SimpleNamespace:
    @hookimpl
    def kierouter_register_model(register: Any) -> None:
        register(msgspec.structs.replace(GOOD, id="acme/never"), _Provider())

    @hookimpl
    def kierouter_register_policies(register: Any) -> None:
        register(ACME)

    return types.SimpleNamespace(
        name="acme",
        kierouter_register_model=kierouter_register_model,
        kierouter_register_policies=kierouter_register_policies,
    )


def _undecorated() -> types.SimpleNamespace:
    def kierouter_register_models(register: Any) -> None:
        register(msgspec.structs.replace(GOOD, id="acme/never"), _Provider())

    return types.SimpleNamespace(name="acme", kierouter_register_models=kierouter_register_models)


def _undecorated_typo() -> types.SimpleNamespace:
    def kierouter_register_judge(register: Any) -> None:
        register("never", lambda ctx: True)

    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        register(GOOD, _Provider())

    return types.SimpleNamespace(
        name="acme",
        kierouter_register_judge=kierouter_register_judge,
        kierouter_register_models=kierouter_register_models,
    )


HOOK_CASES = [
    (
        _misspelled,
        "unknown hook 'kierouter_register_model' is never called; "
        "did you mean 'kierouter_register_models'?",
    ),
    (_undecorated, "kierouter_register_models is not decorated with @hookimpl"),
    (
        _undecorated_typo,
        "kierouter_register_judge looks like a hook but is not one and is never called; "
        "did you mean 'kierouter_register_judges'?",
    ),
]


@pytest.mark.parametrize(("make", "needle"), HOOK_CASES, ids=["misspelled", "undecorated", "typo"])
def test_hook_that_would_never_run_is_an_error(make: Any, needle: str) -> None:
    """A misspelled ``kierouter_*`` hook or one missing @hookimpl is an error naming the hook and
    the nearest real one, not an "ok" plugin with 0 models; the plugin's real hooks still run."""
    registry, errors = _load(make())
    assert needle in errors, errors
    assert "acme/never" not in registry.cards and "never" not in registry.judges
    assert_good_models_plan(registry)
    if make is _misspelled:
        assert "acme" in registry.policies  # the correctly named hook of the same plugin ran


def test_every_unknown_hook_of_every_plugin_is_named() -> None:
    """pluggy's check stops at the first unknown hook; the host names them all, on each plugin
    that has them, including a second plugin with the same misspelling."""

    def typos(name: str) -> types.SimpleNamespace:
        @hookimpl
        def kierouter_register_model(register: Any) -> None: ...

        @hookimpl
        def kierouter_register_sinks(register: Any) -> None: ...

        return types.SimpleNamespace(
            name=name,
            kierouter_register_model=kierouter_register_model,
            kierouter_register_sinks=kierouter_register_sinks,
        )

    registry = load_registry([typos("one"), typos("two")], entry_points=False)
    for record in registry.plugins:
        assert len(record.errors) == 2, record.errors
        assert "'kierouter_register_model'" in record.errors[0]
        assert "did you mean 'kierouter_register_event_sinks'?" in record.errors[1]


def test_plugin_without_any_hook_is_an_error() -> None:
    """A plugin that implements nothing says so instead of loading as "ok" with 0 models."""
    registry = load_registry([types.SimpleNamespace(name="empty")], entry_points=False)
    assert "implements no kierouter hook" in registry.plugins[0].errors[0]


def test_hook_with_wrong_arguments_names_the_specification() -> None:
    """pluggy's specification check refuses an argument kierouter does not pass, and the error
    shows the arguments the hook takes."""

    @hookimpl
    def kierouter_register_models(reg: Any) -> None:
        reg(GOOD, _Provider())

    registry, errors = _load(
        types.SimpleNamespace(name="acme", kierouter_register_models=kierouter_register_models)
    )
    assert "kierouter_register_models(register)" in errors and "'reg'" in errors, errors
    assert_good_models_plan(registry)


# -- the allow and block lists ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("KIEROUTER_LOAD_PLUGINS", "seedream,sedream", "names 'sedream', which is not installed; "
         "did you mean 'seedream'?"),
        ("KIEROUTER_LOAD_PLUGINS", "seedream,kierouter-qwen", "'kierouter-qwen' is a "
         "distribution, its plugin is named 'qwen'"),
        ("KIEROUTER_DISABLE_PLUGINS", "midjorney", "KIEROUTER_DISABLE_PLUGINS names 'midjorney'"),
    ],
)  # fmt: skip
def test_unknown_plugin_name_in_the_lists_is_reported(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, needle: str
) -> None:
    """A name no installed plugin has is reported as its own error record, with the nearest
    name and every installed one; the named plugins that exist load as usual."""
    for name in ("KIEROUTER_LOAD_PLUGINS", "KIEROUTER_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    registry = load_registry()
    unknown = [r for r in registry.plugins if r.source == variable]
    assert len(unknown) == 1 and needle in unknown[0].errors[0], unknown
    assert "installed: flux-kontext, gpt4o-image, midjourney, nano-banana" in unknown[0].errors[0]
    assert all(r.ok for r in registry.plugins if r.source != variable)
    if variable == "KIEROUTER_LOAD_PLUGINS":
        assert [r.name for r in registry.plugins if r.ok] == ["seedream"]
        monkeypatch.setenv(variable, "seedream")
    else:
        monkeypatch.delenv(variable)
    assert_good_models_plan(registry, baseline=load_registry())  # the same, without the typo


# -- serving -------------------------------------------------------------------------------------

SERVE_CASES = {
    "bad value": lambda: _registering(GOOD, msgspec.structs.replace(GOOD, id="b/q", quality=15)),
    "bad type": lambda: _registering(
        GOOD,
        msgspec.structs.replace(GOOD, id="b/l", latency_p50="13s"),  # type: ignore[arg-type]
    ),
    "misspelled hook": _misspelled,
    "undecorated hook": _undecorated,
}


@pytest.mark.parametrize("case", list(SERVE_CASES))
async def test_good_models_serve_next_to_a_refused_plugin(
    case: str, emu: Emulator, tmp_path: Path
) -> None:
    """With a refused card or hook loaded next to it, a shipped model serves a job end to end."""
    registry, errors = _load(SERVE_CASES[case]())
    assert errors
    await assert_good_models_serve(registry, emu, tmp_path)


async def test_good_models_serve_with_an_unknown_name_in_the_allow_list(
    monkeypatch: pytest.MonkeyPatch, emu: Emulator, tmp_path: Path
) -> None:
    """KIEROUTER_LOAD_PLUGINS with a typo next to a real name: the error is reported and the
    real plugin serves."""
    monkeypatch.delenv("KIEROUTER_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "seedream,sedream")
    registry = load_registry()
    assert [r.name for r in registry.plugins if not r.ok] == ["sedream"]
    await assert_good_models_serve(registry, emu, tmp_path)
