"""A Router with local input images: checked before paying, uploaded once, after planning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from kierouter import (
    ImageRequest,
    KieClient,
    Router,
    SqliteUploadCache,
    UploadError,
    ValidationError,
)
from kierouter._images import encode_png
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SCALE = 500.0
FIXTURES = Path(__file__).parent / "fixtures" / "images"
SEEDREAM_EDIT = "bytedance/seedream-v4-edit"
#: One edit model taking up to 10 reference images of up to 10 MB each.
SEEDREAM_ONLY = Policy(name="seedream-edit", constraints=Constraints(allow=(SEEDREAM_EDIT,)))


def png(path: Path, rgb: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> Path:
    """Write a solid-colour PNG and return its path."""
    path.write_bytes(encode_png(size, size, bytes(rgb) * size * size))
    return path


class Bodies:
    """A journal that keeps each create body it is told about (the job's wire, model side)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []

    def record_intent(self, job_key: str, attempt_no: int, model: str, body: Any) -> None:
        self.bodies.append((model, body))

    def record_submitted(self, *args: Any) -> None:
        pass

    def record_ambiguous(self, *args: Any) -> None:
        pass

    def record_attempt(self, *args: Any) -> None:
        pass

    def record_result(self, *args: Any) -> None:
        pass


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emulator:
        yield emulator


@pytest.fixture
async def make_router(emu: Emulator) -> AsyncIterator[Callable[..., Router]]:
    import kierouter_seedream

    routers: list[Router] = []

    def factory(**kw: Any) -> Router:
        client = KieClient(emu.api_key, base_url=emu.base_url, create_limit=500, create_window=1)
        router = Router(
            [kierouter_seedream],
            client=client,
            policy=SEEDREAM_ONLY,
            latency_scale=1 / SCALE,
            **kw,
        )
        routers.append(router)
        return router

    yield factory
    for router in routers:
        await router.aclose()
        await router.client.aclose()


async def test_a_local_png_and_jpeg_reach_the_model_as_their_uploaded_urls(
    emu: Emulator, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """The create body carries two upload URLs, and they serve the two files' bytes."""
    photo = png(tmp_path / "photo.png")
    jpeg = FIXTURES / "orange.jpg"
    journal = Bodies()
    router = make_router(journal=journal)
    result = await router.generate(ImageRequest(prompt="make it night", images=[photo, jpeg]))
    assert result.served_model == SEEDREAM_EDIT
    ((model, body),) = journal.bodies
    urls = body["input"]["image_urls"]
    assert model == SEEDREAM_EDIT and all(u.startswith(emu.base_url + "/uploads/") for u in urls)
    async with httpx.AsyncClient() as http:
        served = [(await http.get(url)).content for url in urls]
    assert served == [photo.read_bytes(), jpeg.read_bytes()]
    assert emu.stats()["uploads"] == 2


async def test_ten_concurrent_jobs_with_one_file_upload_it_once(
    emu: Emulator, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """Ten jobs at once, one photo: ten tasks created, one upload."""
    photo = png(tmp_path / "photo.png")
    router = make_router()
    request = ImageRequest(prompt="make it night", images=[photo])
    results = await asyncio.gather(*(router.generate(request) for _ in range(10)))
    assert all(r.served_model == SEEDREAM_EDIT for r in results)
    stats = emu.stats()
    assert (stats["created_total"], stats["uploads"]) == (10, 1)
    assert router.uploads.counts == {"uploaded": 1, "reused": 9}


async def test_the_uploaded_event_names_the_files_before_the_create(
    make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """Event sinks (and the CLI's progress) hear which local files went up, once per job and
    before its create; a request of URLs only sends no such event."""
    events: list[Any] = []
    router = make_router(event_sinks=[events.append])
    photo = png(tmp_path / "holiday.png")
    await router.generate(ImageRequest(prompt="make it night", images=[photo]), job_key="a")
    url = "https://example.com/cat.png"
    await router.generate(ImageRequest(prompt="make it night", images=[url]), job_key="b")
    kinds = {key: [e.kind for e in events if e.job_key == key] for key in ("a", "b")}
    assert kinds["a"].count("uploaded") == 1 and "uploaded" not in kinds["b"]
    assert kinds["a"].index("uploaded") < kinds["a"].index("created")
    (uploaded,) = [e for e in events if e.kind == "uploaded"]
    assert "holiday.png" in uploaded.detail and uploaded.data == {"files": 1}


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.png"


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("this is a text file named .png\n")
    return path


def _oversized(tmp_path: Path) -> Path:
    path = png(tmp_path / "huge.png")
    with path.open("ab") as out:
        out.write(bytes(10 * 1024 * 1024))  # over Seedream's 10 MB
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [(_missing, "no such file"), (_text, "it is text"), (_oversized, "over the input limit")],
    ids=["missing", "text-named-png", "oversized"],
)
async def test_a_bad_file_fails_before_any_upload_or_create(
    emu: Emulator,
    make_router: Callable[..., Router],
    tmp_path: Path,
    make: Callable[[Path], Path],
    words: str,
) -> None:
    """Missing, text named .png, too big: ValidationError naming the file; nothing sent."""
    bad = make(tmp_path)
    router = make_router()
    request = ImageRequest(prompt="make it night", images=[png(tmp_path / "ok.png"), bad])
    with pytest.raises(ValidationError) as planned:
        router.explain(request)
    with pytest.raises(ValidationError) as run:
        await router.generate(request)
    for info in (planned, run):
        assert info.value.field == "images[1]"
        assert str(bad) in str(info.value) and words in str(info.value)
    stats = emu.stats()
    assert (stats["uploads"], stats["created_total"]) == (0, 0)


async def test_an_upload_that_keeps_failing_fails_the_job_before_any_create(
    emu: Emulator, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """Upload retried like a status read, then UploadError naming the file; no task created."""
    emu.inject("code_500", paths="upload")
    photo = png(tmp_path / "photo.png")
    router = make_router()
    with stamina.set_testing(True, attempts=3), pytest.raises(UploadError) as info:
        await router.generate(ImageRequest(prompt="make it night", images=[photo]))
    assert info.value.field == "images[0]" and str(photo) in str(info.value)
    stats = emu.stats()
    assert stats["faults"]["code_500"] == 3 and stats["created_total"] == 0


async def test_a_router_with_a_file_cache_reuses_an_earlier_runs_upload(
    emu: Emulator, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """A router with a SqliteUploadCache: a second router (a later run) uploads nothing."""
    photo = png(tmp_path / "photo.png")
    cache_file = tmp_path / "uploads.sqlite"
    for _ in range(2):
        router = make_router(upload_cache=SqliteUploadCache(cache_file))
        await router.generate(ImageRequest(prompt="make it night", images=[photo]))
        await router.aclose()
    assert (emu.stats()["uploads"], emu.stats()["created_total"]) == (1, 2)


async def test_resuming_a_paid_task_does_not_need_its_input_file_any_more(
    emu: Emulator, make_router: Callable[..., Router], tmp_path: Path
) -> None:
    """A task created earlier is collected even though its local input was deleted since."""
    photo = png(tmp_path / "photo.png")
    first = make_router()
    request = ImageRequest(prompt="make it night", images=[photo])
    resolved = await first.uploads.resolve(request)
    created = await first.client.create(
        "/api/v1/jobs/createTask",
        {"model": SEEDREAM_EDIT, "input": {"prompt": "x", "image_urls": list(resolved.images)}},
    )
    photo.unlink()
    result = await make_router().resume(
        request, job_key="job-1", model=SEEDREAM_EDIT, task_id=created["taskId"]
    )
    assert result.served_model == SEEDREAM_EDIT and result.task_ids == (created["taskId"],)
    assert (emu.stats()["created_total"], emu.stats()["uploads"]) == (1, 1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"images": ["https://a/b.png", "photo.png"]}, "images[1]"),
        ({"images": [b"\x89PNG"]}, "images[0]"),
    ],
)
def test_a_provider_refuses_inputs_not_uploaded_yet(changes: dict[str, Any], field: str) -> None:
    """Built outside a Router, a body never carries a local path or bytes: ValidationError."""
    import kierouter_seedream

    from kierouter import load_registry

    registry = load_registry([kierouter_seedream], entry_points=False)
    card, provider = registry.card(SEEDREAM_EDIT), registry.provider(SEEDREAM_EDIT)
    with pytest.raises(ValidationError) as info:
        provider.prepare(card, ImageRequest(prompt="make it night", **changes))
    assert info.value.field == field and "not uploaded yet" in str(info.value)
