"""`auto` with any plugin: when its inferred mode and ladder keep no model, it ranks every
installed model (a third-party family is not on the shipped ladder), still under the policy's
own constraints and the request's needs."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kierouter_seedream
import msgspec
import pytest

from kierouter import (
    Capabilities,
    ImageRequest,
    ModelCard,
    Pricing,
    Router,
    explain,
    hookimpl,
    load_registry,
)
from kierouter.policy import BUILTIN_POLICIES, Constraints
from kierouter.provider import MarketProvider
from kierouter.sim import Emulator

#: a Market model the emulator serves whose family is on no built-in ladder
WAN = ModelCard(
    id="wan/2-7-image",
    family="wan",
    task_kinds=("generate",),
    pricing=Pricing(credits=5.0),
    latency_p50=13.0,
    latency_p90=30.0,
    quality=8.0,
    capabilities=Capabilities(aspect_ratios=("1:1", "16:9", "8:1"), max_prompt_chars=20000),
    languages=("*",),
)
CHEAP = msgspec.structs.replace(WAN, id="wan/2-7-image-pro", pricing=Pricing(credits=1.0))


class _Provider(MarketProvider):
    def build_input(
        self, card: ModelCard, request: ImageRequest, *, seed: int | None
    ) -> tuple[dict[str, Any], list[Any], bool]:
        return {"prompt": request.prompt, "n": request.count}, [], False


def _plugin(*cards: ModelCard) -> types.SimpleNamespace:
    @hookimpl
    def kierouter_register_models(register: Any) -> None:
        for card in cards:
            register(card, _Provider())

    return types.SimpleNamespace(name="wan", kierouter_register_models=kierouter_register_models)


@pytest.mark.parametrize(
    "prompt", ["a red fox in snow", 'a poster that says "OPEN"', "一只在雪地里的红狐狸"]
)
def test_auto_plans_a_third_party_model_when_it_is_all_there_is(prompt: str) -> None:
    """With only a third-party plugin installed, auto ranks its models by cost (it planned
    nothing before) and says why, whatever the prompt's inferred intent."""
    registry = load_registry([_plugin(WAN, CHEAP)], entry_points=False)
    plan = explain(prompt, "auto", registry=registry)
    assert plan.models == ("wan/2-7-image-pro", "wan/2-7-image")
    assert plan.policy == "auto" and plan.p_success > 0
    assert all("every installed model was ranked" in s.reason for s in plan.steps)


def test_auto_keeps_its_ladder_when_a_shipped_model_fits() -> None:
    """Next to the shipped plugins, auto plans its ladder as before: the extra family is used
    only when nothing it prefers fits."""
    registry = load_registry([kierouter_seedream, _plugin(WAN)], entry_points=False)
    baseline = load_registry([kierouter_seedream], entry_points=False)
    for prompt in ("a red fox in snow", "一只在雪地里的红狐狸", "an anime fox"):
        plan = explain(prompt, "auto", registry=registry)
        assert plan.steps and plan.steps == explain(prompt, "auto", registry=baseline).steps


def test_auto_falls_back_when_the_request_fits_only_the_third_party_model() -> None:
    """An 8:1 banner with a 10,000-character prompt fits no Seedream model: auto serves it with
    the model that can, and the plan lists why each Seedream model was dropped."""
    registry = load_registry([kierouter_seedream, _plugin(WAN)], entry_points=False)
    plan = explain(ImageRequest(prompt="x" * 10000), "auto", registry=registry)
    assert plan.models == ("wan/2-7-image",)
    assert any("at most 5000 characters" in d.reason for d in plan.dropped)


def test_fallback_keeps_the_policys_own_constraints_and_the_requests_needs() -> None:
    """The fallback drops only auto's preferences: a price cap set on the policy, a deny list
    and a task kind the model cannot do still leave the plan empty."""
    registry = load_registry([_plugin(WAN)], entry_points=False)
    auto = BUILTIN_POLICIES["auto"]
    capped = msgspec.structs.replace(auto, name="capped", constraints=Constraints(max_credits=2))
    denied = msgspec.structs.replace(auto, name="denied", constraints=Constraints(deny=("wan",)))
    assert explain("a fox", capped, registry=registry).models == ()
    assert explain("a fox", denied, registry=registry).models == ()
    edit = ImageRequest(prompt="make it night", images=("https://example.com/a.png",))
    assert explain(edit, "auto", registry=registry).models == ()
    not_auto = msgspec.structs.replace(auto, name="ladder-only", infer=False)
    assert explain("a fox", not_auto, registry=registry).models == ()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator at 1000x speed."""
    async with Emulator(time_scale=1000.0) as emulator:
        yield emulator


async def test_router_with_only_a_third_party_plugin_serves_under_auto(
    emu: Emulator, tmp_path: Path
) -> None:
    """The default policy serves a job with nothing but a third-party plugin installed."""
    async with Router(
        plugins=[_plugin(WAN)],
        base_url=emu.base_url,
        api_key=emu.api_key,
        out_dir=tmp_path,
        allow_private_downloads=True,
        latency_scale=1 / 1000,
    ) as router:
        result = await router.generate("a red fox in snow")
    assert result.served_model == "wan/2-7-image" and len(result.files) == 1
