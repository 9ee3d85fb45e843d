"""The policy engine over a synthetic catalogue of all seven families, with the sheet's prices.

The plugins for several families are written concurrently with the engine, so the table tests
use synthetic cards (one or two per family, priced as the quick-reference sheet says); one test
at the end plans over whatever plugins are installed.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import msgspec
import pytest

from kierouter import (
    Capabilities,
    ConfigurationError,
    ImageRequest,
    ModelCard,
    Pricing,
    explain,
    hookimpl,
    load_registry,
)
from kierouter.policy import (
    BUILTIN_POLICIES,
    DEFAULT_LADDER,
    Constraints,
    Objective,
    OutcomeStats,
    Plan,
    Policy,
    apply_policy_options,
    builtin_policies,
    infer_intent,
    plan,
    resolve_policy,
)

RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")


def card(
    id: str,
    family: str,
    kinds: tuple[Any, ...],
    credits: float,
    *,
    quality: float,
    p50: float,
    strengths: tuple[str, ...] = (),
    languages: tuple[str, ...] = ("en",),
    refs: int = 0,
    images: int = 1,
    resolutions: tuple[str, ...] = ("1K",),
    seed: bool = False,
    mask: bool = False,
    success: float = 0.9,
    **pricing: Any,
) -> ModelCard:
    return ModelCard(
        id=id,
        family=family,
        task_kinds=kinds,
        pricing=Pricing(credits=credits, **pricing),
        latency_p50=p50,
        latency_p90=p50 * 2,
        quality=quality,
        capabilities=Capabilities(
            aspect_ratios=RATIOS,
            resolutions=resolutions,
            max_images=images,
            max_reference_images=refs,
            seed=seed,
            mask=mask,
        ),
        strengths=strengths,
        languages=languages,
        success_rate=success,
    )


SEEDREAM = card(
    "seedream",
    "seedream",
    ("generate",),
    3.5,
    quality=7.5,
    p50=20,
    strengths=("budget", "fast", "chinese", "4k"),
    languages=("en", "zh"),
    images=6,
    resolutions=("1K", "2K", "4K"),
    seed=True,
)
SEEDREAM_EDIT = msgspec.structs.replace(
    SEEDREAM,
    id="seedream-edit",
    task_kinds=("edit",),
    capabilities=msgspec.structs.replace(SEEDREAM.capabilities, max_reference_images=10),
)
NANO = card(
    "nano-banana",
    "nano-banana",
    ("generate",),
    4,
    quality=7.5,
    p50=15,
    strengths=("fast", "budget"),
    languages=("*",),
    success=0.92,
)
NANO_EDIT = card(
    "nano-banana-edit",
    "nano-banana",
    ("edit",),
    4,
    quality=8,
    p50=15,
    strengths=("fast", "editing"),
    languages=("*",),
    refs=10,
    success=0.92,
)
QWEN = card(
    "qwen",
    "qwen",
    ("generate",),
    6,
    quality=8,
    p50=30,
    strengths=("text", "chinese"),
    languages=("en", "zh"),
    seed=True,
)
QWEN_EDIT = card(
    "qwen-edit",
    "qwen",
    ("edit",),
    8,
    quality=8,
    p50=35,
    strengths=("text", "chinese", "editing"),
    languages=("en", "zh"),
    refs=1,
)
FLUX_PRO = card(
    "flux-kontext-pro",
    "flux-kontext",
    ("generate", "edit"),
    8,
    quality=9,
    p50=40,
    strengths=("editing", "photoreal"),
    refs=1,
    success=0.93,
)
FLUX_MAX = card(
    "flux-kontext-max",
    "flux-kontext",
    ("generate", "edit"),
    12,
    quality=9.5,
    p50=45,
    strengths=("editing", "photoreal"),
    refs=1,
    success=0.95,
)
GPT4O = card(
    "gpt4o-image",
    "gpt4o-image",
    ("generate", "edit"),
    10,
    quality=9,
    p50=60,
    strengths=("text", "editing"),
    languages=("*",),
    refs=5,
    images=4,
    mask=True,
    success=0.93,
)
MJ = card(
    "midjourney",
    "midjourney",
    ("generate", "edit"),
    25,
    quality=9.5,
    p50=90,
    strengths=("artistic", "anime"),
    refs=1,
    images=4,
    seed=True,
    success=0.95,
    images_per_task=4,
    per_task=True,
)
RECRAFT_BG = card(
    "recraft-bg",
    "recraft",
    ("remove-background",),
    1,
    quality=8,
    p50=5,
    strengths=("utility",),
    languages=("*",),
    refs=1,
    resolutions=(),
    success=0.98,
)
RECRAFT_UP = msgspec.structs.replace(RECRAFT_BG, id="recraft-upscale", task_kinds=("upscale",))
CARDS: dict[str, ModelCard] = {
    c.id: c
    for c in (
        SEEDREAM,
        SEEDREAM_EDIT,
        NANO,
        NANO_EDIT,
        QWEN,
        QWEN_EDIT,
        FLUX_PRO,
        FLUX_MAX,
        GPT4O,
        MJ,
        RECRAFT_BG,
        RECRAFT_UP,
    )
}
URL = "https://example.com/in.png"
PLAIN = Policy(name="plain")  # the default ladder, cheapest first in each rung, no inference


def run(request: ImageRequest | str, policy: str | Policy = "auto", **kw: Any) -> Plan:
    req = ImageRequest(prompt=request) if isinstance(request, str) else request
    resolved = resolve_policy(policy)
    if kw:
        resolved = msgspec.structs.replace(
            resolved, constraints=msgspec.structs.replace(resolved.constraints, **kw)
        )
    return plan(apply_policy_options(req.validate(), resolved), CARDS, resolved)


TABLE: list[tuple[str, ImageRequest, str | Policy, tuple[str, ...]]] = [
    # (case, request, policy, expected plan)
    (
        "budget: cheapest first, Seedream",
        ImageRequest(prompt="a red fox in snow"),
        "budget",
        ("seedream", "nano-banana", "qwen"),
    ),
    (
        "auto, plain prompt: the default ladder, one model a rung",
        ImageRequest(prompt="a red fox in snow"),
        "auto",
        ("seedream", "nano-banana", "flux-kontext-pro", "midjourney"),
    ),
    (
        "auto, quoted text: GPT-4o first, then Qwen",
        ImageRequest(prompt='a shop sign that says "OPEN"'),
        "auto",
        ("gpt4o-image", "qwen"),
    ),
    (
        "plain ladder, quoted text: GPT-4o before Flux in the shared rung",
        ImageRequest(prompt="a poster reading “SALE”"),
        PLAIN,
        ("seedream", "nano-banana", "gpt4o-image", "midjourney"),
    ),
    (
        "plain ladder, edit: Flux before GPT-4o in the shared rung",
        ImageRequest(prompt="make it night", images=(URL,)),
        PLAIN,
        ("seedream-edit", "nano-banana-edit", "flux-kontext-pro", "midjourney"),
    ),
    (
        "auto, Chinese prompt: Seedream then Qwen",
        ImageRequest(prompt="一只在雪地里的红狐狸"),
        "auto",
        ("seedream", "qwen"),
    ),
    (
        "chinese policy",
        ImageRequest(prompt="a red fox", language="zh"),
        "chinese",
        ("seedream", "qwen"),
    ),
    (
        "auto, 4K: only models that render 4K",
        ImageRequest(prompt="a red fox", resolution="4K"),
        "auto",
        ("seedream",),
    ),
    (
        "speed: fastest first, p50 at most 30 s",
        ImageRequest(prompt="a red fox"),
        "speed",
        ("nano-banana", "seedream", "qwen"),
    ),
    (
        "quality: Flux Kontext Max, then Midjourney",
        ImageRequest(prompt="a red fox"),
        "quality",
        ("flux-kontext-max", "midjourney", "flux-kontext-pro", "gpt4o-image"),
    ),
    (
        "artistic: Midjourney first",
        ImageRequest(prompt="a red fox, oil painting"),
        "artistic",
        ("midjourney", "flux-kontext-max", "flux-kontext-pro"),
    ),
    (
        "text policy: GPT-4o, then Qwen",
        ImageRequest(prompt="a poster"),
        "text",
        ("gpt4o-image", "qwen"),
    ),
    (
        "auto, remove-background: only Recraft",
        ImageRequest(task="remove-background", images=(URL,)),
        "auto",
        ("recraft-bg",),
    ),
    (
        "budget, remove-background: only Recraft",
        ImageRequest(task="remove-background", images=(URL,)),
        "budget",
        ("recraft-bg",),
    ),
    (
        "utility, upscale: only Recraft",
        ImageRequest(task="upscale", images=(URL,)),
        "utility",
        ("recraft-upscale",),
    ),
    (
        "auto, a mask: only the model that takes one",
        ImageRequest(prompt="replace the sky", images=(URL,), mask=URL),
        "auto",
        ("gpt4o-image",),
    ),
    (
        "auto, 3 reference images: models that take that many",
        ImageRequest(prompt="combine these", images=(URL, URL, URL)),
        "auto",
        ("seedream-edit", "nano-banana-edit", "gpt4o-image"),
    ),
    (
        "auto, 4 images: models that return 4 a task",
        ImageRequest(prompt="a red fox", count=4),
        "auto",
        ("seedream", "gpt4o-image", "midjourney"),
    ),
    (
        "expected-cost ordering: the ladder's models by credits/p",
        ImageRequest(prompt="a red fox"),
        Policy(name="ec", ordering="expected-cost"),
        ("seedream", "nano-banana", "flux-kontext-pro", "midjourney"),
    ),
    (
        "prefer goes first when eligible",
        ImageRequest(prompt="a red fox"),
        Policy(name="pref", prefer=("gpt4o-image", "no-such-model")),
        ("gpt4o-image", "seedream", "nano-banana", "flux-kontext-pro"),
    ),
    (
        "max_steps caps the plan",
        ImageRequest(prompt="a red fox"),
        Policy(name="two", max_steps=2),
        ("seedream", "nano-banana"),
    ),
    (
        "deny by family, allow by id",
        ImageRequest(prompt="a red fox"),
        Policy(
            name="ad",
            ordering="objective",
            constraints=Constraints(deny=("seedream",), allow=("nano-banana", "seedream", "qwen")),
        ),
        ("nano-banana", "qwen"),
    ),
    (
        "weighted objective: quality weighs more than cost",
        ImageRequest(prompt="a red fox"),
        Policy(
            name="w",
            ordering="objective",
            objective=Objective(by="weighted", cost=1, quality=5),
            max_steps=2,
        ),
        ("flux-kontext-max", "flux-kontext-pro"),
    ),
]


@pytest.mark.parametrize(
    ("case", "request_", "policy", "expected"), TABLE, ids=[t[0] for t in TABLE]
)
def test_plan_table(
    case: str, request_: ImageRequest, policy: str | Policy, expected: tuple[str, ...]
) -> None:
    """Each request × policy plans exactly the expected models, in order (first model first)."""
    result = run(request_, policy)
    assert result.models == expected, case
    assert result.steps[0].model == expected[0]


@pytest.mark.parametrize("policy", [*BUILTIN_POLICIES, PLAIN])
def test_every_model_is_planned_or_dropped_once(policy: str | Policy) -> None:
    """Each card is either a step or dropped, exactly once, with a non-empty reason."""
    for request in (
        ImageRequest(prompt="a red fox"),
        ImageRequest(prompt="edit", images=(URL,)),
        ImageRequest(prompt='say "hi"', resolution="4K"),
    ):
        result = run(request, policy)
        names = [*result.models, *(d.model for d in result.dropped)]
        assert sorted(names) == sorted(CARDS)
        assert all(d.reason for d in result.dropped) and all(s.reason for s in result.steps)


@pytest.mark.parametrize("policy", [*BUILTIN_POLICIES, PLAIN])
def test_edit_never_plans_a_text_only_model(policy: str | Policy) -> None:
    """An edit request never plans a model that only generates from text."""
    result = run(ImageRequest(prompt="make it night", images=(URL,)), policy)
    for step in result.steps:
        assert "edit" in CARDS[step.model].task_kinds
    assert {"seedream", "nano-banana", "qwen"} <= {d.model for d in result.dropped}


def test_max_credits_5_excludes_flux_gpt4o_and_midjourney() -> None:
    """A 5-credit cap drops Flux, GPT-4o and Midjourney, saying what they cost."""
    for policy in ("auto", "quality", "artistic", "text"):
        result = run("a red fox", policy, max_credits=5)
        planned = set(result.models)
        assert not planned & {"flux-kontext-pro", "flux-kontext-max", "gpt4o-image", "midjourney"}
        reasons = {d.model: d.reason for d in result.dropped}
    result = run("a red fox", "auto", max_credits=5)
    assert result.models == ("seedream", "nano-banana")
    reasons = {d.model: d.reason for d in result.dropped}
    assert "over the cap of 5" in reasons["gpt4o-image"]
    assert "25 credits" in reasons["midjourney"]


def test_language_drops_models_that_do_not_understand_the_prompt() -> None:
    """A Japanese prompt drops English-only models; explicit language wins over the script."""
    result = run("雪の中の赤いキツネ", Policy(name="any", ordering="objective"))
    assert "flux-kontext-pro" not in result.models and "seedream" not in result.models
    assert "does not understand ja prompts" in {d.model: d.reason for d in result.dropped}["qwen"]
    assert run(ImageRequest(prompt="a fox", language="zh"), PLAIN).models[:1] == ("seedream",)


def test_require_capability_and_resolution() -> None:
    """``require`` accepts capabilities (seed); a 4K request drops 1K-only models."""
    seeded = run(
        "a fox",
        Policy(name="s", ordering="objective", constraints=Constraints(require=("seed",))),
    )
    assert set(seeded.models) == {"seedream", "qwen", "midjourney"}
    hi = run(ImageRequest(prompt="a fox", resolution="4K"), PLAIN)
    assert "nano-banana" not in hi.models
    assert "cannot render 4K" in {d.model: d.reason for d in hi.dropped}["nano-banana"]


def test_seed_is_soft_and_marked() -> None:
    """With a seed, models that ignore seeds stay in the plan, marked in their reason."""
    result = run(ImageRequest(prompt="a fox", seed=7), PLAIN)
    reasons = {s.model: s.reason for s in result.steps}
    assert "ignores the seed" in reasons["nano-banana"]
    assert "ignores the seed" not in reasons["seedream"]


def test_ladder_never_revisits_a_model() -> None:
    """A ladder naming a family twice still plans each model once."""
    result = run("a fox", Policy(name="twice", ladder=("seedream", "nano-banana", "seedream")))
    assert len(result.models) == len(set(result.models))


def lognormal_mean(p50: float, p90: float) -> float:
    """The mean of the log-normal through p50 and p90, from the standard library."""
    sigma = math.log(p90 / p50) / NormalDist().inv_cdf(0.9)
    return p50 * math.exp(sigma**2 / 2)


def test_numbers_of_a_plan() -> None:
    """Only produced images are billed: E[credits] = c1·b1 + (1−p1)·c2·b2 with p = b·a; the
    expected seconds weigh each step's mean latency by the chance it is reached; P(success)
    and the worst case follow."""
    stats = OutcomeStats(prior_weight=10)
    for ok, billed, times in ((False, False, 5), (False, True, 3), (True, True, 2)):
        for _ in range(times):
            stats.record("seedream", ok, ("generate",), billed=billed)
    result = explain("a fox", Policy(name="two", max_steps=2), cards=CARDS, stats=stats)
    first, second = result.steps
    assert first.model == "seedream"
    assert first.p_billed == pytest.approx((10 * 0.9 + 5) / 20)
    assert first.p_success == pytest.approx(first.p_billed * (10 + 2) / (10 + 5))
    assert second.p_billed == second.p_success == CARDS[second.model].success_rate
    (c1, b1, p1), (c2, b2, p2) = ((s.credits, s.p_billed, s.p_success) for s in result.steps)
    assert result.expected_credits == pytest.approx(c1 * b1 + (1 - p1) * c2 * b2)
    assert result.p_success == pytest.approx(1 - (1 - p1) * (1 - p2))
    assert result.credits_per_accepted == pytest.approx(result.expected_credits / result.p_success)
    assert (first.p_reached, second.p_reached) == (1.0, pytest.approx(1 - p1))
    means = [lognormal_mean(SEEDREAM.latency_p50, SEEDREAM.latency_p90), lognormal_mean(15, 30)]
    assert [s.latency_mean for s in result.steps] == pytest.approx(means)
    assert result.expected_seconds == pytest.approx(means[0] + (1 - p1) * means[1])
    assert result.worst_case_credits == c1 + c2
    empty = run(ImageRequest(task="upscale", images=(URL,)), PLAIN)
    assert empty.steps == () and empty.p_success == 0.0 and empty.expected_credits == 0.0
    assert empty.expected_seconds == 0.0 and empty.credits_per_accepted == math.inf


def test_midjourney_is_priced_per_task() -> None:
    """Four images cost Midjourney one task; per image that is 6.25 credits."""
    result = run(ImageRequest(prompt="a fox", count=4), "auto")
    assert {s.model: s.credits for s in result.steps}["midjourney"] == 25
    assert "midjourney" in run(ImageRequest(prompt="a fox", count=4), "auto", max_credits=7).models


def test_intent_inference() -> None:
    """auto reads the task kind, quoted text, CJK script, 4K and anime from the request."""
    assert infer_intent(ImageRequest(prompt="a fox")) == ("generate",)
    assert infer_intent(ImageRequest(prompt="fix it", images=(URL,))) == ("edit",)
    assert "text" in infer_intent(ImageRequest(prompt='a sign saying "OPEN"'))
    assert "text" in infer_intent(ImageRequest(prompt="a banner with 「新品」"))
    assert "text" not in infer_intent(ImageRequest(prompt="the fox's tail, don't blur"))
    assert "chinese" in infer_intent(ImageRequest(prompt="红狐狸"))
    assert "chinese" not in infer_intent(ImageRequest(prompt="雪の中のキツネ"))
    assert "4k" in infer_intent(ImageRequest(prompt="a fox", resolution="4K"))
    assert "anime" in infer_intent(ImageRequest(prompt="an anime girl"))
    assert infer_intent(ImageRequest(task="upscale", images=(URL,))) == ("upscale",)
    result = run('a poster that says "OPEN"')
    assert result.intent == ("generate", "text")


def test_anime_prompt_asks_midjourney_for_niji() -> None:
    """Under artistic (and auto) an anime prompt adds version niji6 for Midjourney; the
    request's own options win."""
    policy = BUILTIN_POLICIES["artistic"]
    anime = apply_policy_options(ImageRequest(prompt="an anime fox"), policy)
    assert anime.options == {"midjourney": {"version": "niji6"}}
    plain = ImageRequest(prompt="a fox")
    assert apply_policy_options(plain, policy) is plain
    mine = ImageRequest(prompt="anime fox", options={"midjourney": {"version": "7"}})
    assert apply_policy_options(mine, policy).options == {"midjourney": {"version": "7"}}


def test_learned_failures_and_rejections_change_the_numbers_and_show_in_explain() -> None:
    """Failed tasks recorded for a model under an intent lower its P(billed) and P(success) for
    that intent only and make the plan slower, not dearer (KIE bills no failed task); paid
    rejections lower its P(accepted) and raise the credits per accepted image. The step's
    reason says the rates were learned from N outcomes."""
    baseline = explain('a sign that says "OPEN"', "auto", cards=CARDS)
    stats = OutcomeStats(prior_weight=10)
    for _ in range(10):
        stats.record("gpt4o-image", False, ("generate", "text"))
    failing = explain('a sign that says "OPEN"', "auto", cards=CARDS, stats=stats)
    step = failing.steps[0]
    assert step.model == "gpt4o-image"
    assert step.p_billed == step.p_success == pytest.approx(10 * 0.93 / 20)
    assert "learned from 10 outcomes (text)" in step.reason
    assert failing.p_success < baseline.p_success
    assert failing.expected_seconds > baseline.expected_seconds
    assert failing.expected_credits < baseline.expected_credits
    # another intent only sees the model-wide count (also 10), the kind tag
    other = explain("a fox", PLAIN, cards=CARDS, stats=stats)
    assert "learned" not in {s.model: s.reason for s in other.steps}.get("seedream", "")
    assert stats.counts("gpt4o-image", "text") == (0, 10)
    assert stats.tally("gpt4o-image") == (0, 0, 10)

    stats.clear()
    for _ in range(10):
        stats.record("gpt4o-image", False, ("generate", "text"), billed=True)
    rejecting = explain('a sign that says "OPEN"', "auto", cards=CARDS, stats=stats)
    step = rejecting.steps[0]
    assert step.p_billed == pytest.approx((10 * 0.93 + 10) / 20)
    assert step.p_success == pytest.approx(step.p_billed * 10 / 20)
    assert rejecting.credits_per_accepted > baseline.credits_per_accepted
    assert rejecting.expected_credits > baseline.expected_credits
    assert stats.tally("gpt4o-image", "text") == (0, 10, 10)


def test_record_refuses_an_accepted_image_that_was_not_billed() -> None:
    """An accepted image was produced, so KIE billed it: billed=False with ok=True is an error
    that counts nothing."""
    stats = OutcomeStats()
    with pytest.raises(ValueError, match="billed"):
        stats.record("seedream", True, billed=False)
    assert stats.tally("seedream") == (0, 0, 0) and stats.version == 0
    stats.record("seedream", True, billed=True)
    stats.record("seedream", True)
    assert stats.tally("seedream") == (2, 2, 2)


def test_learned_rejections_reorder_expected_cost_plans_and_failures_do_not() -> None:
    """Under expected-cost ordering a model whose images keep being rejected (and paid) moves
    back; one whose tasks keep failing (free) stays first: it costs time, not credits."""
    policy = Policy(name="ec", ordering="expected-cost", max_steps=2)
    assert explain("a fox", policy, cards=CARDS).models == ("seedream", "nano-banana")
    stats = OutcomeStats()
    for _ in range(50):
        stats.record("seedream", False, ("generate",))
    assert explain("a fox", policy, cards=CARDS, stats=stats).models == ("seedream", "nano-banana")
    stats.clear()
    for _ in range(50):
        stats.record("seedream", False, ("generate",), billed=True)
    learned = explain("a fox", policy, cards=CARDS, stats=stats)
    assert learned.models == ("nano-banana", "seedream")
    assert "learned from 50 outcomes" in learned.steps[1].reason
    # the cost objective ranks by the same key
    cheapest = Policy(name="cheap", ordering="objective", max_steps=2)
    assert explain("a fox", cheapest, cards=CARDS, stats=stats).models[0] == "nano-banana"


def test_equal_cost_keys_go_fastest_first() -> None:
    """Two models at the same credits per accepted image: expected-cost tries the one with the
    lower mean latency per unit of success first (the ladder keeps its own order), which
    lowers the expected seconds and not the expected credits."""
    slow = card("slow", "seedream", ("generate",), 4, quality=8, p50=60, success=0.9)
    fast = card("fast", "nano-banana", ("generate",), 4, quality=8, p50=15, success=0.9)
    cards = {c.id: c for c in (slow, fast)}
    ladder = explain("a fox", PLAIN, cards=cards)
    ordered = explain("a fox", Policy(name="ec", ordering="expected-cost"), cards=cards)
    assert ladder.models == ("slow", "fast") and ordered.models == ("fast", "slow")
    assert ordered.expected_seconds < ladder.expected_seconds
    assert ordered.expected_credits == pytest.approx(ladder.expected_credits)


def test_resolve_policy_by_name() -> None:
    """Names resolve to built-ins; an unknown name lists the known ones."""
    assert set(builtin_policies()) == {
        "auto",
        "budget",
        "speed",
        "quality",
        "artistic",
        "text",
        "chinese",
        "utility",
    }
    assert resolve_policy("budget") is BUILTIN_POLICIES["budget"]
    mine = Policy(name="mine")
    assert resolve_policy(mine) is mine
    with pytest.raises(ConfigurationError, match=r"unknown policy 'nope'.*auto, budget"):
        resolve_policy("nope")
    assert BUILTIN_POLICIES["auto"].ladder == DEFAULT_LADDER


class PostersPlugin:
    """An in-process plugin registering a model and two policies (one shadowing a built-in)."""

    @hookimpl
    def kierouter_register_policies(self, register: Any) -> None:
        register(
            Policy(
                name="posters",
                constraints=Constraints(require=("text",)),
                objective=Objective(by="quality"),
                ordering="objective",
            )
        )
        register(Policy(name="speed", ladder=("nano-banana",)))


def test_plugin_policies_resolve_between_config_and_builtins() -> None:
    """A plugin's policy is found by name, plans like it says, and shadows a built-in."""
    registry = load_registry([PostersPlugin()], entry_points=False)
    assert registry.plugins[0].policies == ["posters", "speed"]
    posters = resolve_policy("posters", registry=registry)
    assert explain("a poster", "posters", cards=CARDS, registry=registry).models == (
        "gpt4o-image",
        "qwen",
    )
    assert posters.objective.by == "quality"
    assert resolve_policy("speed", registry=registry).ladder == ("nano-banana",)
    assert resolve_policy("speed") is BUILTIN_POLICIES["speed"]
    with pytest.raises(ConfigurationError, match="posters"):
        resolve_policy("poster", registry=registry)


def test_composing_a_builtin() -> None:
    """A built-in composed with msgspec.structs.replace keeps its ladder and adds a limit."""
    budget = BUILTIN_POLICIES["budget"]
    tight = msgspec.structs.replace(
        budget,
        name="tight",
        constraints=msgspec.structs.replace(budget.constraints, deny=("nano-banana",)),
    )
    assert explain("a fox", tight, cards=CARDS).models == ("seedream", "qwen", "flux-kontext-pro")


def test_plan_over_installed_plugins() -> None:
    """Over whatever plugins are installed, every card is accounted for and every step can run
    the request (its kind, its count) within the policy's limits."""
    registry = load_registry()
    cards = registry.cards
    requests = [
        ImageRequest(prompt="a red fox"),
        ImageRequest(prompt='a poster that says "OPEN"'),
        ImageRequest(prompt="一只红狐狸"),
        ImageRequest(prompt="make it night", images=(URL,)),
        ImageRequest(task="remove-background", images=(URL,)),
    ]
    for name in BUILTIN_POLICIES:
        for request in requests:
            result = explain(request, name, cards=cards)
            assert sorted([*result.models, *(d.model for d in result.dropped)]) == sorted(cards)
            cap = resolve_policy(name).constraints.max_credits
            for step in result.steps:
                assert request.kind in cards[step.model].task_kinds
                assert cap is None or step.credits <= cap
    bg = explain(ImageRequest(task="remove-background", images=(URL,)), "auto", cards=cards)
    assert all(cards[m].family == "recraft" for m in bg.models)
