"""Journal exactness: the serving attempt and the result are one transaction, so a process
killed between them never counts a task twice (journal, batch status, manifest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kierouter.batch import BatchSettings, batch_status, parse_rows, resume_batch, run_batch
from kierouter.journal import SqliteJournal
from kierouter.sim import Emulator

SCALE = 500.0


class _Killed(BaseException):
    """The process dies here (a BaseException: nothing in kierouter catches it)."""


def _died_of(error: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return any(_died_of(inner, kind) for inner in error.exceptions)
    return isinstance(error, kind)


def _plugins() -> list[Any]:
    import kierouter_nano_banana
    import kierouter_seedream

    return [kierouter_seedream, kierouter_nano_banana]


async def test_a_kill_while_recording_the_result_never_double_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    """The batch dies while the journal records a served job (inside the write that moves it
    to succeeded); resumed, every task is counted once: the journal's spend, batch status and
    the manifest all equal what the emulator charged, one success per job."""
    real_move = SqliteJournal._move
    kills = [1]

    def dying_move(self: SqliteJournal, db: Any, key: str, wanted: Any, **fields: Any) -> None:
        if wanted == "succeeded" and kills:
            kills.pop()
            raise _Killed
        real_move(self, db, key, wanted, **fields)

    rows = parse_rows("\n".join(f"a red fox, take {i}" for i in range(3)))
    out = tmp_path / "out"
    async with Emulator(time_scale=SCALE, create_limit=500, create_window=1.0) as emu:
        settings = BatchSettings(
            policy="budget", base_url=emu.base_url, loopback=True, time_scale=SCALE,
            concurrency=1, create_limit=500, create_window=1.0, read_rate=1000.0,
        )  # fmt: skip
        monkeypatch.setattr(SqliteJournal, "_move", dying_move)
        with pytest.raises(BaseException) as died:
            await run_batch(rows, out, settings, api_key=emu.api_key, plugins=_plugins())
        assert _died_of(died.value, _Killed)
        monkeypatch.setattr(SqliteJournal, "_move", real_move)
        report = await resume_batch(out, api_key=emu.api_key, plugins=_plugins())
        charged = emu.charges()["total"]
        created = emu.stats()["created_total"]
    assert report.complete and created == 3
    status = batch_status(out)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert status["spent"] == report.spent == pytest.approx(charged)
    assert sum(m["credits"] for m in manifest) == pytest.approx(charged)
    for line in manifest:
        assert [a["outcome"] for a in line["attempts"]] == ["success"], line["attempts"]
    reliability.record(
        "crashes",
        "killed between a served attempt and its result (inside the journal write)",
        tried=1,
        outcome="resumed: each task counted once in the journal, batch status and manifest",
    )
