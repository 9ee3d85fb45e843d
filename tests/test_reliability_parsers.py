"""Parser fuzzing: mutated recorded bodies never crash a parser with KeyError/TypeError.

Seeds are every JSON object in the recorded KIE traffic (``tests/fixtures/kie-recordings``) and
in each plugin's ``tests/fixtures``, plus the status and callback bodies the emulator produces
for every installed model (so families whose plugins land later are covered by their own
shapes). Hypothesis drops keys, changes types, truncates strings and embedded JSON, and nests
garbage; every installed provider's ``parse_create``/``parse_status``/``parse_callback`` and the
transport's envelope parsing must either return or raise :class:`kierouter.KieRouterError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kierouter as kr
from kierouter._models import TaskStatus
from kierouter._plugins import load_registry
from kierouter._transport import unwrap
from kierouter.provider import Provider
from kierouter.sim import in_thread

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIRS = [
    ROOT / "tests" / "fixtures",
    *sorted(ROOT.glob("plugins/kierouter-*/tests/fixtures")),
]
COUNTS: dict[str, int] = {}


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@cache
def _providers() -> dict[str, Provider]:
    """One provider per class among every installed plugin's models."""
    registry = load_registry()
    out: dict[str, Provider] = {}
    for model_id, provider in sorted(registry.providers.items()):
        out.setdefault(type(provider).__qualname__, provider)
        out.setdefault(model_id, provider)
    return out


def _emulator_bodies() -> list[dict[str, Any]]:
    """Real status envelopes and callback bodies from the emulator, one task per model."""
    registry = load_registry()
    found: list[dict[str, Any]] = []
    with in_thread(time_scale=1e-6, create_limit=1000, create_window=1.0) as emu:
        with httpx.Client(
            base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=10
        ) as http:
            for model_id, card in sorted(registry.cards.items()):
                provider = registry.providers[model_id]
                kind = card.task_kinds[0]
                images = () if kind == "generate" else (f"{emu.base_url}/_sim/seed.png",)
                try:
                    prepared = provider.prepare(
                        card,
                        kr.ImageRequest(task=kind, prompt="a red fox", images=images),
                        callback_url="http://127.0.0.1:9/kie/callback/job",
                    )
                    created = http.post(prepared.path, json=prepared.body).json()
                    task_id = provider.parse_create(created["data"])
                except Exception:
                    continue
                emu.advance(10_000)
                answer = http.get(provider.status_path, params=provider.status_params(task_id))
                found.append(answer.json())
        found += [c["body"] for c in emu.callbacks]
    return found


@cache
def _seeds() -> tuple[str, ...]:
    bodies: list[dict[str, Any]] = []
    for folder in FIXTURE_DIRS:
        for path in sorted(folder.rglob("*.json")):
            bodies.extend(_walk(json.loads(path.read_text(encoding="utf-8"))))
    for body in _emulator_bodies():
        bodies.extend(_walk(body))
    unique = {json.dumps(b, sort_keys=True) for b in bodies if b}
    return tuple(sorted(unique))


GARBAGE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "success", "fail", "GENERATING", "{", "[]", '{"resultUrls":', "null"]),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)
OPS = ("drop", "replace", "truncate", "wrap", "stringify", "nest", "inner_json")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _mutate_at(root: Any, path: tuple[Any, ...], op: str, data: st.DataObject) -> Any:
    """Return ``root`` with the value at ``path`` mutated by ``op``."""
    target = _get(root, path)
    if op == "drop" and path:
        parent = _get(root, path[:-1])
        del parent[path[-1]]
        return root
    if op == "truncate" and isinstance(target, str):
        new: Any = target[: data.draw(st.integers(0, max(0, len(target) - 1)))]
    elif op == "wrap":
        new = [target]
    elif op == "stringify":
        new = json.dumps(target)
    elif op == "nest":
        new = {data.draw(st.text(max_size=5)): target, "data": data.draw(GARBAGE)}
    elif op == "inner_json" and isinstance(target, str) and target[:1] in "{[":
        try:
            inner = json.loads(target)
        except ValueError:
            new = target[:-1]
        else:
            inner_paths = list(_paths(inner))
            inner = _mutate_at(
                inner,
                data.draw(st.sampled_from(inner_paths)),
                data.draw(st.sampled_from(OPS)),
                data,
            )
            new = json.dumps(inner)
    else:
        new = data.draw(GARBAGE)
    if not path:
        return new
    _get(root, path[:-1])[path[-1]] = new
    return root


def _mutated(data: st.DataObject) -> Any:
    body = json.loads(data.draw(st.sampled_from(_seeds())))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = list(_paths(body))
        body = _mutate_at(
            body, data.draw(st.sampled_from(paths)), data.draw(st.sampled_from(OPS)), data
        )
    return body


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call one parser; only kierouter's errors may escape."""
    COUNTS[what] = COUNTS.get(what, 0) + 1
    try:
        return fn(*args, **kwargs)
    except kr.KieRouterError as exc:
        error: Exception = exc
    assert str(error), f"{what} raised {type(error).__name__} with no message"
    return None


def _check_status(status: Any) -> None:
    if status is None:
        return
    assert isinstance(status, TaskStatus)
    assert status.state in ("pending", "success", "failed")
    assert all(isinstance(u, str) and u for u in status.urls)
    if status.state == "success":
        assert status.urls, "a success must carry result URLs"
    for number in (status.credits,):
        assert number is None or math.isfinite(number)


def test_seeds_cover_every_installed_family() -> None:
    """There are recorded or emulated bodies to mutate, and providers to feed them to."""
    assert len(_seeds()) > 20
    assert _providers()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_bodies_raise_only_kierouter_errors(data: st.DataObject) -> None:
    """Every provider's parse_create, parse_status and parse_callback, fed a mutated recorded
    body (and its ``data``), returns a sane TaskStatus or raises KieRouterError."""
    body = _mutated(data)
    inner = body.get("data") if isinstance(body, dict) else body
    for name, provider in _providers().items():
        _call(f"{name}.parse_create", provider.parse_create, inner)
        _check_status(_call(f"{name}.parse_status", provider.parse_status, inner, task_id="t-1"))
        _check_status(_call(f"{name}.parse_callback", provider.parse_callback, body))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    status=st.sampled_from([200, 200, 400, 401, 429, 455, 500, 502]),
    cut=st.integers(0, 400),
    retry_after=st.none()
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
    | st.sampled_from(["5", "-1", "1e9", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)
def test_transport_envelope_parsing_raises_only_kierouter_errors(
    data: st.DataObject, status: int, cut: int, retry_after: str | None
) -> None:
    """unwrap() on a mutated or truncated envelope, any HTTP status and any Retry-After header
    returns the data or raises KieRouterError."""
    body = json.dumps(_mutated(data)).encode()
    content = body if data.draw(st.booleans()) else body[:cut]
    headers = httpx.Headers({} if retry_after is None else {"retry-after": retry_after})
    _call("transport.unwrap", unwrap, status, content, headers)


def test_zz_record_counts(reliability: Any) -> None:
    """Records how many mutated bodies each parser got, for docs/reliability.md."""
    if not COUNTS:
        pytest.skip("the fuzz tests did not run (deselected)")
    by_kind: dict[str, int] = {}
    for what, n in COUNTS.items():
        kind = what.rsplit(".", 1)[1]
        by_kind[kind] = by_kind.get(kind, 0) + n
    providers = len({type(p) for p in _providers().values()})
    for kind, n in sorted(by_kind.items()):
        where = "the transport" if kind == "unwrap" else f"{providers} provider classes"
        reliability.record(
            "parsers",
            f"mutated bodies into {kind} ({where})",
            tried=n,
            outcome="parsed, or KieRouterError with a message; never KeyError/TypeError",
        )


DONE = {"taskId": "t", "state": "success", "resultJson": '{"resultUrls":["https://r/x.png"]}'}


@pytest.mark.parametrize(
    "body",
    [
        {"code": 200, "data": {**DONE, "createTime": float("inf")}},
        {"code": 200, "data": {**DONE, "createTime": float("nan")}},
        {"code": 200, "data": {**DONE, "creditsConsumed": float("nan")}},
        {"code": 200, "data": {"taskId": "t", "state": "fail", "completeTime": 1e300}},
    ],
)
def test_non_finite_numbers_do_not_crash_parsers(body: dict[str, Any]) -> None:
    """Infinite or NaN timestamps (json.loads accepts them) do not escape as ValueError."""
    for name, provider in _providers().items():
        _call(f"{name}.parse_callback", provider.parse_callback, body)
        _call(f"{name}.parse_status", provider.parse_status, body["data"], task_id="t")
