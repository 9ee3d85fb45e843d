"""Hostile and broken plugins (beyond tests/test_plugin_host.py): every hook raising, garbage
registrations and return values, duplicates of every kind, import-time crashes of any type
(including sys.exit), and provider code that raises while a Router runs a job. Each is isolated
on its own plugin or model with a clear message; the other plugins and jobs carry on."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

import kierouter as kr
from kierouter import ImageRequest, ModelCard, Pricing, hookimpl, load_registry
from kierouter._router import Router
from kierouter.policy import Constraints, Policy
from kierouter.provider import MarketProvider
from kierouter.sim import Emulator

HOOKS = (
    "kierouter_register_models",
    "kierouter_register_policies",
    "kierouter_register_judges",
    "kierouter_register_event_sinks",
)


class _Provider(MarketProvider):
    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Any], bool]:
        return {"prompt": request.prompt}, [], False


def _card(model_id: str) -> ModelCard:
    return ModelCard(
        id=model_id,
        family="test",
        task_kinds=("generate",),
        pricing=Pricing(credits=1.0),
        latency_p50=1.0,
        latency_p90=2.0,
        quality=5.0,
    )


def _good(name: str = "good") -> types.SimpleNamespace:
    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        register(_card(f"{name}/model"), _Provider())

    @hookimpl
    def kierouter_register_judges(register: Any) -> None:
        register(f"{name}-judge", lambda ctx: True)

    return types.SimpleNamespace(
        name=name,
        kierouter_register_models=kierouter_register_models,
        kierouter_register_judges=kierouter_register_judges,
    )


def _with_hook(name: str, hook: str, body: Any) -> types.SimpleNamespace:
    def impl(register: Any) -> Any:
        return body(register)

    impl.__name__ = hook
    return types.SimpleNamespace(name=name, **{hook: hookimpl(impl)})


def _raise(register: Any) -> None:
    raise RuntimeError("plugin bug")


def _assert_isolated(registry: kr.Registry, bad: str, *needles: str) -> str:
    records = {r.name: r for r in registry.plugins}
    assert records["good"].ok, records["good"].errors
    assert "good/model" in registry.cards and "good-judge" in registry.judges
    errors = " | ".join(records[bad].errors)
    assert errors, f"plugin {bad!r} has no recorded error"
    for needle in needles:
        assert needle in errors, errors
    return errors


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_raising_is_recorded_on_its_plugin(hook: str, reliability: Any) -> None:
    """Whichever hook raises, the error names the hook and the exception; others still load."""
    registry = load_registry([_with_hook("bad", hook, _raise), _good()], entry_points=False)
    _assert_isolated(registry, "bad", hook, "RuntimeError", "plugin bug")
    reliability.record("plugins", "a hook raises", tried=1, outcome="recorded on the plugin")


GARBAGE: list[tuple[str, Any, str]] = [
    ("kierouter_register_policies", lambda r: r("not a policy"), "not a Policy"),
    ("kierouter_register_policies", lambda r: r(None), "not a Policy"),
    ("kierouter_register_judges", lambda r: r(42, lambda c: True), "str and a callable"),
    ("kierouter_register_judges", lambda r: r("j", "not callable"), "str and a callable"),
    ("kierouter_register_event_sinks", lambda r: r("s", None), "str and a callable"),
    ("kierouter_register_event_sinks", lambda r: r(), "bad register() call"),
    ("kierouter_register_models", lambda r: r(_card("x/m"), _Provider(), "extra"), "bad register"),
    ("kierouter_register_models", lambda r: r(_card("x/m"), MarketProvider), "not a kierouter"),
]


@pytest.mark.parametrize(("hook", "body", "needle"), GARBAGE)
def test_garbage_registrations_in_every_hook(
    hook: str, body: Any, needle: str, reliability: Any
) -> None:
    """Wrong types and arities passed to register() in any hook are refused with a message."""
    registry = load_registry([_with_hook("bad", hook, body), _good()], entry_points=False)
    _assert_isolated(registry, "bad", needle)
    assert "x/m" not in registry.cards
    reliability.record("plugins", "garbage passed to register()", tried=1, outcome="refused")


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_returning_garbage_instead_of_registering_is_reported(
    hook: str, reliability: Any
) -> None:
    """A hook that returns things (a list of cards, say) instead of calling register() is
    told so, rather than silently registering nothing."""

    def body(register: Any) -> Any:
        return [_card("x/m"), _Provider()]

    registry = load_registry([_with_hook("bad", hook, body), _good()], entry_points=False)
    _assert_isolated(registry, "bad", hook, "returned")
    reliability.record("plugins", "a hook returns garbage", tried=1, outcome="reported")


def _policy(name: str) -> Any:
    return Policy(name=name, ladder=("test",))


DUPLICATES: list[tuple[str, Any]] = [
    ("kierouter_register_models", lambda r: r(_card("good/model"), _Provider())),
    ("kierouter_register_judges", lambda r: r("good-judge", lambda c: True)),
]


@pytest.mark.parametrize(("hook", "body"), DUPLICATES)
def test_duplicates_keep_the_first_and_name_both(hook: str, body: Any, reliability: Any) -> None:
    """A second plugin claiming a taken model id or judge name is refused, naming both."""
    registry = load_registry([_good(), _with_hook("bad", hook, body)], entry_points=False)
    _assert_isolated(registry, "bad", "'good'", "'bad'", "already registered")
    assert registry.owner("model", "good/model") == "good"
    reliability.record("plugins", "duplicate id or name", tried=1, outcome="first kept, both named")


def test_duplicate_policy_and_event_sink_names(reliability: Any) -> None:
    """Policies and event sinks are first-come too."""

    @hookimpl
    def kierouter_register_policies(register: Any) -> None:
        register(_policy("house"))

    @hookimpl
    def kierouter_register_event_sinks(register: Any) -> None:
        register("audit", lambda event: None)

    def plugin(name: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            name=name,
            kierouter_register_policies=kierouter_register_policies,
            kierouter_register_event_sinks=kierouter_register_event_sinks,
        )

    registry = load_registry([plugin("good"), plugin("bad")], entry_points=False)
    bad = {r.name: r for r in registry.plugins}["bad"]
    assert len(bad.errors) == 2 and all("'good'" in e for e in bad.errors)
    assert registry.owner("policy", "house") == "good"
    assert registry.owner("event sink", "audit") == "good"
    reliability.record("plugins", "duplicate policy / sink name", tried=2, outcome="refused")


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('config missing')\n", "config missing"),
        ("import sys\nsys.exit(3)\n", "SystemExit"),
        ("x = 1 / 0\n", "ZeroDivisionError"),
        (
            "from kierouter import hookimpl\n@hookimpl\ndef kierouter_register_models(reg):\n"
            "    pass\n",
            "kierouter_register_models does not match its specification "
            "kierouter_register_models(register)",
        ),
    ],
)
def test_entry_point_plugin_that_cannot_load_is_recorded(
    plugin_site: Any, monkeypatch: pytest.MonkeyPatch, source: str, needle: str, reliability: Any
) -> None:
    """Any import-time failure of an entry-point plugin (even sys.exit) is recorded on it and
    the process and the other plugins carry on."""
    plugin_site.add("kr_hostile_plugin", source)
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "kr_hostile_plugin,seedream")
    registry = load_registry()
    records = {r.name: r for r in registry.plugins}
    assert needle in " ".join(records["kr_hostile_plugin"].errors)
    assert any(m.startswith(("seedream/", "bytedance/")) for m in registry.cards)
    reliability.record("plugins", "plugin fails to import", tried=1, outcome="recorded")


# -- provider code raising while a job runs ----------------------------------------------------


def _exploding(where: str) -> Any:
    """The real Nano Banana provider, except that its ``where`` method raises a bare error."""
    from kierouter_nano_banana._provider import NanoBananaProvider

    class Exploding(NanoBananaProvider):  # type: ignore[misc]
        def build_input(self, card: ModelCard, request: ImageRequest, *, seed: int | None) -> Any:
            if where == "prepare":
                raise KeyError("aspect")
            return super().build_input(card, request, seed=seed)

        def parse_create(self, data: Any) -> str:
            if where == "parse_create":
                raise AttributeError("no attribute 'get'")
            return str(super().parse_create(data))

        def parse_status(self, data: Any, *, task_id: str) -> kr.TaskStatus:
            if where == "parse_status":
                raise TypeError("'NoneType' object is not subscriptable")
            return super().parse_status(data, task_id=task_id)  # type: ignore[no-any-return]

    return Exploding()


ERRORS = {"prepare": "KeyError", "parse_create": "AttributeError", "parse_status": "TypeError"}
NANO = "google/nano-banana"
SEEDREAM = "bytedance/seedream-v4-text-to-image"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=1000.0, create_limit=500, create_window=1.0) as emulator:
        yield emulator


@pytest.mark.parametrize("where", sorted(ERRORS))
async def test_provider_raising_mid_job_fails_that_model_not_the_router(
    emu: Emulator, where: str, reliability: Any
) -> None:
    """A provider method raising KeyError/TypeError/AttributeError during a job ends that
    model's attempt with a message naming the plugin's error; the job escalates to the next
    rung and is served. A create whose answer the plugin cannot read is ambiguous: it is
    never created again."""
    import kierouter_nano_banana
    import kierouter_seedream

    card = load_registry([kierouter_nano_banana], entry_points=False).cards[NANO]

    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        register(card, _exploding(where))

    bad = types.SimpleNamespace(
        name="exploding", kierouter_register_models=kierouter_register_models
    )
    policy = Policy(
        name="bad-then-seedream",
        ladder=("nano-banana", "seedream"),
        constraints=Constraints(allow=(NANO, SEEDREAM)),
    )
    router = Router(
        [bad, kierouter_seedream],
        api_key=emu.api_key,
        base_url=emu.base_url,
        latency_scale=1 / 1000.0,
        allow_private_downloads=True,
    )
    async with router:
        if where == "parse_create":
            # The task exists but its id cannot be read: ambiguous, never paid for twice.
            with pytest.raises(kr.AmbiguousSubmissionError) as info:
                await router.generate("a red fox", policy=policy)
            attempts = info.value.attempts
        else:
            result = await router.generate("a red fox", policy=policy)
            assert result.served_model == SEEDREAM
            attempts = result.attempts
    first = attempts[0]
    assert first.model == NANO and first.outcome != "success"
    assert "plugin" in first.reason and ERRORS[where] in first.reason, first.reason
    assert emu.stats()["created_total"] == {"prepare": 1, "parse_create": 1}.get(where, 2)
    outcome = {
        "parse_create": "create marked ambiguous naming the error; not resubmitted",
        "parse_status": "read again until the task's deadline, then hedged naming the error "
        "(the task stays watched); the job escalates and is served",
    }.get(where, "that model's attempt fails naming the error; the job escalates and is served")
    reliability.record("plugins", f"provider {where} raises mid-job", tried=1, outcome=outcome)
