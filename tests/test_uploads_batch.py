"""Local input images in batches: paths relative to the batch file, checked with line numbers,
uploaded once and remembered in the batch's own journal file; pipelines pass URLs on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kierouter._images import encode_png
from kierouter.batch import (
    BatchInputError,
    BatchSettings,
    parse_rows,
    plan_rows,
    read_rows,
    resume_batch,
    run_batch,
)
from kierouter.sim import Emulator

SCALE = 200.0
FIXTURES = Path(__file__).parent / "fixtures" / "images"


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_recraft
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana, kierouter_recraft]


def png(path: Path, rgb: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> Path:
    """Write a solid-colour PNG and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(size, size, bytes(rgb) * size * size))
    return path


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, create_limit=100, create_window=1.0) as emulator:
        yield emulator


def _settings(emu: Emulator, **kw: Any) -> BatchSettings:
    base: dict[str, Any] = {
        "base_url": emu.base_url,
        "loopback": True,
        "time_scale": SCALE,
        "create_limit": 100,
        "create_window": 1.0,
        "read_rate": 1000.0,
    }
    return BatchSettings(**{**base, **kw})


def test_relative_paths_are_relative_to_the_batch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSONL and CSV rows name files beside the batch file; they are stored absolute."""
    folder = tmp_path / "shoot"
    photo = png(folder / "img" / "photo.png")
    (folder / "rows.jsonl").write_text(
        json.dumps({"prompt": "night", "images": ["img/photo.png"], "mask": "img/photo.png"})
        + "\n"
        + json.dumps({"prompt": "day", "images": ["https://example.com/a.png", str(photo)]})
        + "\n"
    )
    (folder / "rows.csv").write_text('prompt,images\nnight,"[""img/photo.png""]"\n')
    monkeypatch.chdir(tmp_path)  # somewhere else than the batch file
    first, second = read_rows(folder / "rows.jsonl")
    assert first.request.images == (str(photo),) and first.request.mask == str(photo)
    assert second.request.images == ("https://example.com/a.png", str(photo))
    (row,) = read_rows(folder / "rows.csv")
    assert row.request.images == (str(photo),)
    (here,) = parse_rows('{"prompt": "x", "images": ["shoot/img/photo.png"]}', fmt="jsonl")
    assert here.request.images == (str(photo),)


def test_bad_image_files_are_reported_by_line(emu: Emulator, tmp_path: Path) -> None:
    """A missing file and a text file named .png: both rows named by line before anything runs."""
    png(tmp_path / "ok.png")
    (tmp_path / "notes.png").write_text("not an image")
    batch = tmp_path / "rows.jsonl"
    batch.write_text(
        '{"prompt": "a", "images": ["ok.png"]}\n'
        '{"prompt": "b", "images": ["gone.png"]}\n'
        '{"prompt": "c", "images": ["ok.png"]}\n'
        '{"prompt": "d", "images": ["notes.png"]}\n'
    )
    with pytest.raises(BatchInputError) as info:
        plan_rows(read_rows(batch), _settings(emu), plugins=_plugins())
    lines = dict(info.value.problems)
    assert set(lines) == {2, 4}
    assert "gone.png: no such file" in lines[2] and "notes.png is not a PNG" in lines[4]
    assert emu.stats()["uploads"] == 0


async def test_rows_sharing_a_file_upload_it_once_and_pipelines_pass_urls_on(
    emu: Emulator, tmp_path: Path
) -> None:
    """Five rows edit one photo through edit → upscale → remove background: one upload, each
    later step takes the previous step's result URL; the journal file remembers the upload."""
    png(tmp_path / "photo.png")
    batch = tmp_path / "rows.jsonl"
    batch.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": f"make it night, take {i}",
                    "images": ["photo.png"],
                    "steps": ["generate", "upscale", "remove-background"],
                }
            )
            + "\n"
            for i in range(5)
        )
    )
    out = tmp_path / "out"
    report = await run_batch(
        read_rows(batch), out, _settings(emu), api_key=emu.api_key, plugins=_plugins()
    )
    assert report.complete and report.jobs == 15
    stats = emu.stats()
    assert (stats["uploads"], stats["created_total"]) == (1, 15)
    with sqlite3.connect(out / "journal.sqlite") as db:
        (row,) = db.execute("SELECT host, url FROM kierouter_uploads").fetchall()
    assert row[0] == emu.base_url and row[1].startswith(emu.base_url + "/uploads/")


async def test_a_resumed_batch_reuses_the_upload_its_journal_remembers(
    emu: Emulator, tmp_path: Path
) -> None:
    """A batch halted by an empty account resumes after a top-up without uploading again."""
    png(tmp_path / "photo.png")
    batch = tmp_path / "rows.jsonl"
    batch.write_text("".join(f'{{"prompt": "v{i}", "images": ["photo.png"]}}\n' for i in range(3)))
    emu.set(credits=4.0)  # one seedream edit (3.5), then 402
    out = tmp_path / "out"
    first = await run_batch(
        read_rows(batch), out, _settings(emu, concurrency=1), api_key=emu.api_key,
        plugins=_plugins(),
    )  # fmt: skip
    assert first.halted == "credits" and first.counts["downloaded"] == 1
    emu.set(credits=1000.0)
    again = await resume_batch(out, api_key=emu.api_key, plugins=_plugins())
    assert again.complete
    assert emu.stats()["uploads"] == 1
