"""Delivery is not generation: a billed task whose images cannot be saved is kept, never paid
again. The emulator's result-file faults (5xx, reset, slow, truncated, wrong type) and a folder
that cannot be written, against a real Router over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import kierouter as kr
from kierouter import PollConfig, Router
from kierouter.journal import RouterJournal, SqliteJournal
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

SCALE = 500.0
SEEDREAM = "bytedance/seedream-v4-text-to-image"
NANO = "google/nano-banana"
#: Two rungs: a download failure that escalated would show up as a second task.
LADDER = Policy(
    name="two", ladder=("seedream", "nano-banana"), constraints=Constraints(allow=(SEEDREAM, NANO))
)


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emulator:
        yield emulator


def _head(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(4)


def _router(emu: Emulator, **kw: Any) -> Router:
    client = kr.KieClient(
        emu.api_key,
        base_url=emu.base_url,
        read_rate=1000,
        read_timeout=kw.pop("timeout", 5.0),
        read_attempts=kw.pop("read_attempts", 5),
    )
    kw.setdefault("poll", PollConfig(retry_backoff=0.5))
    kw.setdefault("allow_private_downloads", True)  # (also implied by the emulator's base URL)
    return Router(_plugins(), client=client, latency_scale=1 / SCALE, **kw)


async def test_a_blip_of_file_errors_is_retried_not_paid_again(
    emu: Emulator, tmp_path: Path
) -> None:
    """Three result-file 5xx in a row (the 1.2 s blip of the field report): the image is saved
    on a later round, and the job made exactly one task."""
    emu.inject("http_500", paths="files", count=3)
    async with _router(emu, out_dir=tmp_path) as router:
        result = await router.generate("a red fox", policy=LADDER)
    assert emu.stats()["created_total"] == 1
    assert result.delivery == "downloaded" and len(result.files) == 1
    assert _head(result.files[0].path) == b"\x89PNG"
    assert [a.outcome for a in result.attempts] == ["success"]


@pytest.mark.parametrize(
    "kind",
    ["http_500", "drop_connection", "slow_response", "truncated_body", "wrong_content_type",
     "mislabeled_body"],
)  # fmt: skip
async def test_a_result_that_cannot_be_saved_is_paid_undelivered(
    emu: Emulator, tmp_path: Path, kind: str, reliability: Any
) -> None:
    """Every result-file fault, persistent: the job raises PaidUndeliveredError carrying the
    served model, the task id, every URL and the credits KIE charged; one task was created; the
    journal holds the job as undelivered with its URLs; once the fault clears, the task's
    images are saved without creating anything."""
    emu.inject(kind, paths="files", seconds=2.0)
    backend = SqliteJournal(tmp_path / "journal.sqlite")
    backend.add_jobs([("row-1", {"prompt": "a red fox"})])
    out = tmp_path / "out"
    router = _router(emu, out_dir=out, journal=RouterJournal(backend), timeout=0.5)
    async with router:
        with pytest.raises(kr.PaidUndeliveredError) as info:
            await router.generate("a red fox", policy=LADDER, job_key="row-1")
        paid = info.value.result
        assert emu.stats()["created_total"] == 1
        (task_id,) = paid.task_ids
        assert paid.served_model == SEEDREAM and paid.task_id == task_id
        assert paid.delivery == "undelivered" and paid.delivery_error and paid.files == ()
        assert paid.urls and paid.credits == emu.charges()["total"] > 0
        assert task_id in str(info.value) and "kierouter fetch" in str(info.value)
        job = backend.job("row-1")
        assert job is not None and job.state == "undelivered"
        assert job.result is not None and job.result.urls == paid.urls
        assert job.credits == paid.credits and backend.spent() == paid.credits

        emu.clear_faults()
        files = await router.task(task_id, model=SEEDREAM).download(out, stem="row-1")
    backend.mark_downloaded("row-1", files)
    assert [Path(f.path).name for f in files] == ["row-1-1.png"]
    assert backend.job("row-1").state == "downloaded"  # type: ignore[union-attr]
    assert emu.stats()["created_total"] == 1
    backend.close()
    reliability.record(
        "faults",
        f"result file {kind} on every try",
        tried=1,
        outcome="paid undelivered (task id, URLs, credits kept), 1 task; saved once cleared",
    )


async def test_an_unwritable_folder_is_found_before_paying(emu: Emulator, tmp_path: Path) -> None:
    """An output folder that cannot be created is a ConfigurationError naming it, and nothing
    is sent to KIE."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    async with _router(emu, out_dir=blocker / "out") as router:
        with pytest.raises(kr.ConfigurationError, match="a-file/out") as info:
            await router.generate("a red fox", policy=LADDER)
    assert "nothing was sent" in str(info.value)
    assert emu.stats()["created_total"] == 0


async def test_a_folder_lost_after_paying_is_undelivered_not_an_oserror(
    emu: Emulator, tmp_path: Path
) -> None:
    """The output folder vanishes (replaced by a file) while the task runs: the job ends
    PaidUndeliveredError with its task id, never a bare OSError, and nothing is created
    again."""
    out = tmp_path / "out"

    def break_folder(event: kr.Event) -> None:
        if event.kind == "created":
            shutil.rmtree(out)
            out.write_text("the disk is gone")

    async with _router(emu, out_dir=out, event_sinks=[break_folder]) as router:
        with pytest.raises(kr.PaidUndeliveredError) as info:
            await router.generate("a red fox", policy=LADDER)
    assert info.value.result.task_id and "could not save" in info.value.result.delivery_error
    assert emu.stats()["created_total"] == 1


async def test_expired_links_are_reminted_and_said_so_when_they_cannot_be(
    emu: Emulator, tmp_path: Path
) -> None:
    """A finished task's links expire: fetching it re-mints them through download-url; when
    download-url cannot renew them either, the DownloadError says the links have expired."""
    async with _router(emu, read_attempts=1) as router:
        result = await router.generate("a red fox", policy=LADDER)  # no out_dir: URLs only
        assert result.delivery == "urls" and result.files == ()
        emu.advance(48 * 3600)  # past the result links' lifetime
        handle = router.task(result.task_ids[0], model=SEEDREAM)
        files = await handle.download(tmp_path / "ok")
        assert len(files) == 1
        emu.inject("code_500", paths="download")
        with pytest.raises(kr.DownloadError, match="expired") as info:
            await handle.download(tmp_path / "gone")
    assert info.value.expired
    assert emu.stats()["created_total"] == 1
