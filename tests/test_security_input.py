"""Bad input for every registered model: validated, or refused before any HTTP call.

For each model of the installed registry (so plugins that land later are covered), hypothesis
builds ImageRequests — wrong task kinds, empty and overlong prompts, odd ratios, out-of-range
counts and seeds, non-http images, and option tables full of unknown keys and wrong types — and:

* ``provider.prepare`` either returns a call or raises :class:`kierouter.ValidationError` whose
  ``field`` names a request field (``prompt``, ``images[0]``, ``options.steps``...), never
  another exception;
* the same request through a :class:`~kierouter.Router` pinned to that model against the
  emulator creates a task only when ``prepare`` accepted it, and the emulator never answers 422
  to a body the plugin accepted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kierouter as kr
from kierouter._plugins import Registry, load_registry
from kierouter._router import PollConfig, Router
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator, in_thread

REQUEST_FIELDS = {f.name for f in msgspec.structs.fields(kr.ImageRequest)}
COUNTS: dict[str, dict[str, int]] = {}
_LOCK = threading.Lock()


@cache
def _registry() -> Registry:
    return load_registry()


def _models() -> list[str]:
    return sorted(_registry().cards)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with in_thread(time_scale=2000.0, create_limit=100_000, create_window=1.0) as emulator:
        yield emulator


URLS = st.sampled_from(
    [
        "https://example.com/in.png",
        "http://example.com/a.jpg",
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "not a url",
        "",
        "https://example.com/" + "x" * 3000,
    ]
)
GARBAGE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.sampled_from(["1:1", "16:9", "png", "jpeg", "2K", "4K", "high", "v7", "relax"]),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=2)
    ),
    max_leaves=4,
)
OPTION_KEYS = st.sampled_from(
    [
        "quality", "output_format", "guidance_scale", "steps", "num_inference_steps", "speed",
        "version", "stylization", "weirdness", "variety", "image_size", "acceleration", "size",
        "enable_safety_checker", "nsfw_checker", "isEnhance", "nVariants", "safetyTolerance",
        "enableTranslation", "resolution", "image_resolution", "max_images", "rendering_speed",
        "style", "strength", "bogus_field",
    ]
)  # fmt: skip


def _base(model: str) -> kr.ImageRequest:
    """A plain request this model should accept."""
    kind = _registry().cards[model].task_kinds[0]
    images = () if kind == "generate" else ("https://example.com/in.png",)
    return kr.ImageRequest(task=kind, prompt="a red fox in snow", images=images)


def _requests(model: str) -> st.SearchStrategy[kr.ImageRequest]:
    """The model's plain request with up to four fields replaced by odd or wrong values."""
    card = _registry().cards[model]
    option_tables = st.dictionaries(
        st.sampled_from([model, card.family, "someone-else"]),
        st.dictionaries(OPTION_KEYS | st.text(max_size=6), GARBAGE, max_size=3),
        max_size=2,
    )
    fields: dict[str, st.SearchStrategy[Any]] = {
        "prompt": st.sampled_from(["", "   ", "画一只猫", "x" * 6000, "a\x00b"])
        | st.text(max_size=40),
        "task": st.none() | st.sampled_from(["generate", "edit", "remove-background", "upscale"]),
        "aspect_ratio": st.sampled_from(
            ["1:1", "16:9", "9:16", "21:9", "4:3", "3:2", "auto", "0:1", "3:0", "abc", "1:99"]
        ),
        "resolution": st.sampled_from(["1K", "2K", "4K"]),
        "count": st.integers(-1, 20),
        "seed": st.integers(-5, 2**32),
        "images": st.lists(URLS, max_size=12).map(tuple),
        "mask": URLS,
        "negative_prompt": st.text(max_size=20) | st.just("y" * 3000),
        "language": st.sampled_from(["en", "zh", "ja", "xx"]),
        "options": option_tables,
    }

    @st.composite
    def build(draw: st.DrawFn) -> kr.ImageRequest:
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True))
        changes = {name: draw(fields[name]) for name in chosen}
        return msgspec.structs.replace(_base(model), **changes)

    return build()


def _field_ok(field: str) -> bool:
    """A ValidationError's field names a request field, an indexed one or an option."""
    root = field.split("[", 1)[0].split(".", 1)[0]
    return root in REQUEST_FIELDS or root == "request"


def _count(model: str, key: str) -> None:
    with _LOCK:
        COUNTS.setdefault(model, {}).setdefault(key, 0)
        COUNTS[model][key] += 1


async def _through_router(emu: Emulator, model: str, request: kr.ImageRequest) -> str:
    """Run ``request`` pinned to ``model``; return how it ended."""
    card = _registry().cards[model]
    policy = Policy(name="pin", ladder=(card.family,), constraints=Constraints(allow=(model,)))
    client = KieClient(
        emu.api_key,
        base_url=emu.base_url,
        create_limit=100_000,
        create_window=1.0,
        read_rate=10_000,
    )
    router = Router(
        registry=_registry(),
        client=client,
        latency_scale=1 / 2000.0,
        poll=PollConfig(create_retries=0),
        allow_private_downloads=True,
    )
    try:
        await router.generate(request, policy=policy)
    except kr.ValidationError:
        return "validation"
    except (kr.JobFailedError, kr.BudgetExhaustedError) as exc:
        if all(a.outcome == "skipped" for a in exc.attempts):
            return "skipped"
        return "failed"
    finally:
        await router.aclose()
        await client.aclose()
    return "served"


@pytest.mark.parametrize("model", _models())
def test_requests_validate_or_are_refused_before_any_call(model: str, emu: Emulator) -> None:
    """Hypothesis requests for this model: prepare() accepts or raises ValidationError naming a
    field; through a Router, a refused request creates nothing and an accepted one is never
    answered 422 by the emulator's field rules."""
    registry = _registry()
    card, provider = registry.cards[model], registry.providers[model]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=_requests(model))
    def check(request: kr.ImageRequest) -> None:
        refusal: kr.ValidationError | None = None
        try:
            prepared = provider.prepare(card, request, seed=request.seed)
        except kr.ValidationError as exc:
            refusal = exc
        else:
            assert isinstance(prepared.body, dict)
        if refusal is not None:
            assert _field_ok(refusal.field), f"{model}: ValidationError names {refusal.field!r}"
            assert refusal.field in str(refusal)
        accepted = refusal is None
        before = emu.stats()
        outcome = asyncio.run(_through_router(emu, model, request))
        after = emu.stats()
        created = after["created_total"] - before["created_total"]
        rejected = sum(after["rejected"].values()) - sum(before["rejected"].values())
        if not accepted:
            assert created == 0, f"{model}: a refused request reached KIE"
            assert outcome in ("validation", "skipped")
        assert rejected == 0, f"{model}: the emulator refused an accepted body: {after['rejected']}"
        _count(model, "accepted" if accepted else "refused")
        _count(model, "created" if created else "not created")

    check()
    assert COUNTS[model]


def test_zz_record_counts(reliability: Any) -> None:
    """Records how many requests each model got and how many were refused before a call."""
    if not COUNTS:
        pytest.skip("the input tests did not run (deselected)")
    refused = sum(c.get("refused", 0) for c in COUNTS.values())
    accepted = sum(c.get("accepted", 0) for c in COUNTS.values())
    reliability.record(
        "input",
        f"hypothesis ImageRequests for {len(COUNTS)} models, refused by the plugin",
        tried=refused,
        outcome="ValidationError naming the field; 0 creates seen by the emulator",
    )
    reliability.record(
        "input",
        f"hypothesis ImageRequests for {len(COUNTS)} models, accepted by the plugin",
        tried=accepted,
        outcome="sent through a Router; the emulator's field rules refused none",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"count": "3"}, "count"),
        ({"count": 2.5}, "count"),
        ({"seed": "7"}, "seed"),
        ({"prompt": None}, "prompt"),
        ({"images": 5}, "images"),
        ({"images": (None,)}, "images"),
        ({"aspect_ratio": 16}, "aspect_ratio"),
        ({"options": {"seedream": 5}}, "options"),
        ({"options": ["quality"]}, "options"),
    ],
)
def test_wrongly_typed_fields_are_validation_errors(
    changes: dict[str, Any], field: str, reliability: Any
) -> None:
    """ImageRequest's constructor type-checks only images and mask; validate() answers any other
    wrongly typed field with ValidationError naming it (not TypeError/AttributeError)."""
    with pytest.raises(kr.ValidationError) as info:
        msgspec.structs.replace(kr.ImageRequest(prompt="a fox"), **changes).validate()
    assert info.value.field.startswith(field)
    reliability.record(
        "input", "wrongly typed ImageRequest fields", tried=1, outcome="ValidationError naming it"
    )
