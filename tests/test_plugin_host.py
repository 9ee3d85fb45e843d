"""The plugin host loads plugins in isolation and keeps track of who registered what."""

from __future__ import annotations

import re
import types
from typing import Any

import pytest

from kierouter import ImageRequest, ModelCard, Pricing, hookimpl, load_registry
from kierouter.provider import MarketProvider


class _Provider(MarketProvider):
    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Any], bool]:
        return {"prompt": request.prompt}, [], False


def _card(model_id: str, family: str = "test") -> ModelCard:
    return ModelCard(
        id=model_id,
        family=family,
        task_kinds=("generate",),
        pricing=Pricing(credits=1.0),
        latency_p50=1.0,
        latency_p90=2.0,
        quality=5.0,
    )


def _plugin(name: str, *model_ids: str) -> types.SimpleNamespace:
    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        for model_id in model_ids:
            register(_card(model_id), _Provider())

    return types.SimpleNamespace(name=name, kierouter_register_models=kierouter_register_models)


def test_in_process_plugins_register_models_with_their_owner() -> None:
    """Models registered in-process are kept, stamped with the plugin that registered them."""
    registry = load_registry([_plugin("alpha", "a/one", "a/two")], entry_points=False)
    assert sorted(registry.cards) == ["a/one", "a/two"]
    assert registry.cards["a/one"].plugin == "alpha"
    assert registry.owner("model", "a/two") == "alpha"
    assert registry.plugins[0].ok


def test_duplicate_model_id_is_rejected_naming_both_plugins() -> None:
    """A second plugin registering a taken id is recorded as an error naming both plugins."""
    registry = load_registry(
        [_plugin("first", "shared/model"), _plugin("second", "shared/model", "b/own")],
        entry_points=False,
    )
    first, second = registry.plugins
    assert registry.owner("model", "shared/model") == "first"
    assert first.ok
    assert "b/own" in registry.cards, "the rest of the second plugin still loads"
    assert len(second.errors) == 1
    assert "'first'" in second.errors[0] and "'second'" in second.errors[0]
    assert "shared/model" in second.errors[0]


def test_plugin_raising_in_hook_is_recorded_and_others_still_load() -> None:
    """A hook that raises is recorded on its plugin; a good plugin next to it still loads."""

    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        register(_card("broken/before"), _Provider())
        raise RuntimeError("boom")

    broken = types.SimpleNamespace(
        name="broken", kierouter_register_models=kierouter_register_models
    )
    registry = load_registry([broken, _plugin("good", "good/model")], entry_points=False)
    records = {r.name: r for r in registry.plugins}
    assert "RuntimeError: boom" in records["broken"].errors[0]
    assert records["good"].ok
    assert "good/model" in registry.cards


def test_garbage_registration_is_rejected() -> None:
    """Registering something that is not a card/provider is an error on that plugin only."""

    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        register("not a card", object())
        register(_card("x/ok"), "not a provider")
        register()  # wrong arity

    plugin = types.SimpleNamespace(name="junk", kierouter_register_models=kierouter_register_models)
    registry = load_registry([plugin], entry_points=False)
    assert registry.cards == {}
    assert len(registry.plugins[0].errors) == 3


@pytest.fixture
def fake_site(plugin_site: Any) -> Any:
    """Two entry-point plugins on sys.path: one good, one that cannot import."""
    plugin_site.add_good("kr_good_plugin", "ep/good")
    plugin_site.add("kr_broken_plugin", "raise ImportError('missing dependency xyz')\n")
    return plugin_site


def test_entry_point_plugin_that_fails_to_import_is_recorded(fake_site: Any) -> None:
    """A broken entry-point plugin is listed with its error; the good one is loaded."""
    registry = load_registry()
    records = {r.name: r for r in registry.plugins}
    assert "missing dependency xyz" in records["kr_broken_plugin"].errors[0]
    assert records["kr_good_plugin"].ok and records["kr_good_plugin"].version == "1.0"
    assert registry.cards["ep/good"].plugin == "kr_good_plugin"


def test_allow_list_and_block_list(fake_site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """KIEROUTER_LOAD_PLUGINS limits loading; empty loads nothing; DISABLE blocks by name."""
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "kr_good_plugin")
    assert [r.name for r in load_registry().plugins] == ["kr_good_plugin"]
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "")
    assert load_registry().plugins == []
    monkeypatch.delenv("KIEROUTER_LOAD_PLUGINS")
    monkeypatch.setenv("KIEROUTER_DISABLE_PLUGINS", "kr_broken_plugin")
    names = [r.name for r in load_registry().plugins]
    assert "kr_broken_plugin" not in names and "kr_good_plugin" in names


def test_trace_logs_hook_calls(
    fake_site: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """KIEROUTER_TRACE_PLUGINS logs the import and each hook call at INFO, with the plugin's
    name, the duration and what the call registered."""
    monkeypatch.setenv("KIEROUTER_TRACE_PLUGINS", "1")
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "kr_good_plugin")
    with caplog.at_level("INFO", logger="kierouter.plugins"):
        load_registry()
    lines = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    imported = r"plugin 'kr_good_plugin': imported kr_good_plugin in [\d.]+ ms"
    assert any(re.fullmatch(imported, m) for m in lines), lines
    assert any(
        re.fullmatch(
            r"plugin 'kr_good_plugin': kierouter_register_models took [\d.]+ ms, registered 1", m
        )
        for m in lines
    ), lines


def test_duplicate_between_entry_points_goes_to_the_name_that_sorts_first(
    plugin_site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entry points load in the order of their names, so the documented rule holds whatever
    order the file system lists distributions in: 'kr_aa' keeps the id, 'kr_zz' is told."""
    for name in ("kr_zz", "kr_aa"):
        plugin_site.add_good(name, "ep/good")
    monkeypatch.setenv("KIEROUTER_LOAD_PLUGINS", "kr_zz,kr_aa")
    registry = load_registry()
    assert [r.name for r in registry.plugins] == ["kr_aa", "kr_zz"]
    assert registry.owner("model", "ep/good") == "kr_aa"
    assert "already registered by plugin 'kr_aa'" in registry.plugins[1].errors[0]
