"""Polling mode, task handles, resuming existing tasks, and the blocking SyncRouter."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import kierouter as kr
from kierouter import PollConfig, Router, SyncRouter
from kierouter._completion import PollSchedule, latency_quantile
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator, in_thread

SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
#: Exactly two rungs, one model each, whatever else the plugins register.
TWO = Constraints(allow=(SEEDREAM, NANO))
LADDER = Policy(name="two-rungs", ladder=("seedream", "nano-banana"), constraints=TWO)


def _plugins() -> list[Any]:
    """The real Seedream and Nano Banana plugins, registered in-process."""
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


@pytest.fixture
async def make_router() -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[Router, KieClient]] = []

    def factory(emu: Emulator, **kw: Any) -> Router:
        client = KieClient(
            emu.api_key,
            base_url=emu.base_url,
            create_limit=500,
            create_window=1.0,
            read_rate=kw.pop("read_rate", 500),
        )
        router = Router(
            _plugins(),
            client=client,
            latency_scale=1 / emu.time_scale,
            allow_private_downloads=True,
            **kw,
        )
        made.append((router, client))
        return router

    yield factory
    for router, client in made:
        await router.aclose()
        await client.aclose()


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


async def test_polling_uses_at_most_three_reads_per_image_on_median(
    make_router: Callable[..., Router],
) -> None:
    """At the emulator's default latencies (scaled), the median task needs ≤ 3 status reads."""
    polled: Counter[str] = Counter()

    def count(event: kr.Event) -> None:
        if event.kind == "polled" and event.task_id:
            polled[event.task_id] += 1

    async with Emulator(time_scale=100, create_limit=500, create_window=1.0) as emu:
        router = make_router(emu, event_sinks=[count], read_rate=10)  # KIE's real read limit
        results = await asyncio.gather(
            *(router.generate(f"a red fox, take {i}", policy=LADDER) for i in range(20))
        )
        reads = emu.stats()["status_reads"]
    tasks = [t for r in results for t in r.task_ids]
    per_task = [polled[t] for t in tasks]
    assert sum(per_task) == reads
    print("status reads per task:", sorted(per_task))
    assert statistics.median(per_task) <= 3, per_task
    assert all(n >= 1 for n in per_task)


#: (p50, p90) of real cards: Recraft, Nano Banana, Seedream v4, Seedream 5 lite, Midjourney.
CARD_LATENCIES = [(5.0, 12.0), (15.0, 30.0), (20.0, 45.0), (45.0, 110.0), (60.0, 150.0)]


def test_latency_quantile_is_the_lognormal_through_p50_and_p90() -> None:
    """The schedule's latency model returns the card's own p50 and p90 at 0.5 and 0.9."""
    assert latency_quantile(20, 45, 0.5) == pytest.approx(20)
    assert latency_quantile(20, 45, 0.9) == pytest.approx(45)
    assert latency_quantile(20, 45, 0.3) < 20 < latency_quantile(20, 45, 0.7)
    assert latency_quantile(20, 20, 0.1) == pytest.approx(20)  # no spread: always the p50


@pytest.mark.parametrize(("p50", "p90"), CARD_LATENCIES)
def test_default_schedule_reads_first_before_the_median(p50: float, p90: float) -> None:
    """The first read comes before the model's p50, at the default 30 % quantile."""
    first = PollSchedule(PollConfig(), p50, p90).first()
    assert 0.5 * p50 < first < p50
    assert first == pytest.approx(latency_quantile(p50, p90, 0.3))


@pytest.mark.parametrize(("p50", "p90"), CARD_LATENCIES)
def test_default_schedule_read_times_increase_within_the_interval_bounds(
    p50: float, p90: float
) -> None:
    """Read times strictly increase; every gap, jitter included, lies in [min, max] interval."""
    cfg = PollConfig()
    for seed in range(20):
        times = PollSchedule(cfg, p50, p90, random.Random(seed)).times(40)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        eps = 1e-9  # gaps are differences of sums: allow float rounding
        assert all(cfg.min_interval - eps <= g <= cfg.max_interval + eps for g in gaps), gaps
        assert times == sorted(times) and len(set(times)) == len(times)


def test_schedule_reads_every_fraction_of_p50_then_grows_past_p90() -> None:
    """Before p90 the gap is interval_p50 × p50 (± jitter); past p90 it grows up to the cap."""
    cfg = PollConfig(jitter=0.0)
    times = PollSchedule(cfg, 20, 45).times(30)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    body = [g for t, g in zip(times, gaps, strict=False) if t < 45]
    assert body and all(g == pytest.approx(6.0) for g in body)  # 0.3 × 20 s
    tail = [g for t, g in zip(times, gaps, strict=False) if t >= 45]
    assert tail[0] == pytest.approx(6.0 * 1.6)
    assert tail[-1] == pytest.approx(cfg.max_interval)  # grown to the cap, not past it
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(tail))  # never shrinks


def test_schedule_median_task_needs_at_most_three_reads() -> None:
    """For every card shape, by the third read over half the model's tasks have finished."""
    for p50, p90 in CARD_LATENCIES:
        third = PollSchedule(PollConfig(jitter=0.0), p50, p90).times(3)[-1]
        assert third > latency_quantile(p50, p90, 0.5), (p50, p90, third)


def test_schedule_honours_explicit_first_and_bounds() -> None:
    """first= overrides the quantile; min_interval/max_interval clamp the fraction of p50."""
    assert PollSchedule(PollConfig(first=3.0), 20, 45).first() == 3.0
    fast = PollSchedule(PollConfig(jitter=0.0), 5, 12).times(3)  # 0.3 × 5 s = 1.5 s < 2 s
    assert fast[2] - fast[1] == pytest.approx(2.0)
    slow = PollSchedule(PollConfig(jitter=0.0, max_interval=10), 60, 150).times(3)
    assert slow[2] - slow[1] == pytest.approx(10.0)  # 0.3 × 60 s = 18 s, capped


@pytest.mark.parametrize(
    "kwargs", [{"first_quantile": 0.0}, {"first_quantile": 1.0}, {"interval_p50": 0.0}]
)
def test_poll_config_rejects_bad_schedule_fields(kwargs: dict[str, float]) -> None:
    """A first_quantile outside (0, 1) or a non-positive interval_p50 is refused, named."""
    with pytest.raises(kr.ConfigurationError, match=next(iter(kwargs))):
        PollConfig(**kwargs)


async def test_task_that_never_finishes_times_out_and_escalates(
    make_router: Callable[..., Router],
) -> None:
    """A task that never finishes is hedged at its deadline (the default on_timeout) and the
    next rung serves the job; the late task stays watched until the watch limit, then ends as
    a timeout that cost nothing."""
    async with Emulator(time_scale=400, create_limit=500, create_window=1.0) as emu:
        emu.configure("seedream", never_finish_rate=1.0)
        poll = PollConfig(deadline_factor=1.5, min_deadline=10, watch_limit=200)
        router = make_router(emu, poll=poll)
        result = await router.generate("a red fox", policy=LADDER)
        assert router.watching() == result.watching == (result.task_ids[0],)
        (ended,) = await router.drain()
    assert [(a.model, a.outcome) for a in result.attempts] == [
        (SEEDREAM, "hedged"),
        (NANO, "success"),
    ]
    assert "deadline" in result.attempts[0].reason
    assert (ended.task_id, ended.outcome, ended.credits) == (result.task_ids[0], "timeout", 0)
    assert router.watching() == ()


async def test_transient_status_errors_are_tolerated(make_router: Callable[..., Router]) -> None:
    """500s and malformed bodies on status reads do not fail the job."""
    async with Emulator(time_scale=200, create_limit=500, create_window=1.0) as emu:
        emu.inject("http_500", paths="status", rate=0.2)
        emu.inject("malformed_body", paths="status", rate=0.2)
        router = make_router(emu)
        results = await asyncio.gather(*(router.generate("a fox", policy=LADDER) for _ in range(5)))
    assert all(r.ok for r in results)


async def test_task_handle_rebuilt_from_an_id(
    make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """A fresh router's task(id) reads status and downloads; an expired link is re-minted."""
    async with Emulator(time_scale=200, create_limit=500, create_window=1.0) as emu:
        first = make_router(emu)
        result = await first.generate("a red fox", policy=LADDER)  # no out_dir: URLs only
        assert result.files == ()
        emu.advance(48 * 3600)  # the result link expires
        later = make_router(emu)
        handle = later.task(result.task_ids[0], model=result.served_model or "")
        status = await handle.status()
        assert status.state == "success"
        files = await handle.download(tmp_path)
        assert later._downloader.stats["reminted"] >= 1
    assert len(files) == 1
    assert _read(files[0].path).startswith(b"\x89PNG")
    assert Path(files[0].path).name == f"{result.task_ids[0]}-1.png"


async def test_resume_finishes_an_existing_task_without_creating_it_again(
    make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """resume() with a known task id waits for it and downloads it: still one create."""
    async with Emulator(time_scale=200, create_limit=500, create_window=1.0) as emu:
        router = make_router(emu)
        provider, card = router.registry.provider(SEEDREAM), router.registry.card(SEEDREAM)
        request = kr.ImageRequest(prompt="a red fox")
        prepared = provider.prepare(card, request)
        task_id = provider.parse_create(await router.client.create(prepared.path, prepared.body))
        result = await router.resume(
            request,
            job_key="row-7",
            model=SEEDREAM,
            task_id=task_id,
            policy=LADDER,
            out_dir=tmp_path,
        )
        assert emu.stats()["created_total"] == 1
    assert result.served_model == SEEDREAM
    assert result.task_ids == (task_id,)
    assert Path(result.files[0].path).name == "row-7-1.png"


async def test_resume_escalates_past_models_already_tried(
    make_router: Callable[..., Router],
) -> None:
    """If the resumed task failed, the remaining rungs run and the failed model is not retried."""
    async with Emulator(time_scale=200, create_limit=500, create_window=1.0) as emu:
        emu.configure("seedream", fail_rate=1.0)
        router = make_router(emu)
        provider, card = router.registry.provider(SEEDREAM), router.registry.card(SEEDREAM)
        request = kr.ImageRequest(prompt="a red fox")
        prepared = provider.prepare(card, request)
        task_id = provider.parse_create(await router.client.create(prepared.path, prepared.body))
        result = await router.resume(
            request, job_key="row-8", model=SEEDREAM, task_id=task_id, policy=LADDER
        )
        assert emu.stats()["created"] == {SEEDREAM: 1, NANO: 1}
    assert [(a.model, a.outcome) for a in result.attempts] == [
        (SEEDREAM, "failed"),
        (NANO, "success"),
    ]


def test_sync_router_blocks_and_returns_results(tmp_path: Path) -> None:
    """SyncRouter offers generate/task/credits as plain blocking calls."""
    with (
        in_thread(time_scale=200) as emu,
        SyncRouter(
            _plugins(),
            base_url=emu.base_url,
            api_key=emu.api_key,
            latency_scale=1 / emu.time_scale,
            allow_private_downloads=True,
        ) as router,
    ):
        result = router.generate("a red fox", policy=LADDER, out_dir=tmp_path)
        handle = router.task(result.task_ids[0], model=result.served_model or "")
        assert handle.status().state == "success"
        assert router.credits() == emu.balance
        assert "sim-key" not in repr(router)
    assert result.ok and _read(result.files[0].path).startswith(b"\x89PNG")


def test_sync_router_uploads_a_local_file_once(tmp_path: Path) -> None:
    """SyncRouter.upload sends a local image to the emulator's upload host, gives back the URL
    that serves the same bytes, and reuses it for the same content."""
    from kierouter._images import encode_png

    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_png(8, 8, bytes((10, 200, 30)) * 64))
    with (
        in_thread(time_scale=200) as emu,
        SyncRouter(_plugins(), base_url=emu.base_url, api_key=emu.api_key) as router,
    ):
        first = router.upload(photo)
        again = router.upload(str(photo))
        served = httpx.get(first.url).content
        uploads = emu.stats()["uploads"]
    assert again.url == first.url and uploads == 1
    assert served == photo.read_bytes()
