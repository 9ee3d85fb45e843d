"""The router tells a journal each intent before its create and each task id right after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import kierouter as kr
from kierouter._router import Router, WebhookConfig
from kierouter._transport import KieClient
from kierouter.policy import Constraints, Policy
from kierouter.sim import Emulator

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


class _Journal:
    """Records every call with the number of tasks the emulator had created at that moment."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.calls: list[tuple[Any, ...]] = []

    def _created(self) -> int:
        return int(self.emu.stats()["created_total"])

    async def record_intent(self, job_key: str, attempt_no: int, model: str, body: Any) -> None:
        self.calls.append(("intent", job_key, attempt_no, model, self._created()))
        assert body["model"] == model

    def record_submitted(self, job_key: str, attempt_no: int, model: str, task_id: str) -> None:
        self.calls.append(("submitted", job_key, attempt_no, model, self._created(), task_id))

    def record_ambiguous(self, job_key: str, attempt_no: int, model: str, error: str) -> None:
        self.calls.append(("ambiguous", job_key, attempt_no, model, self._created()))

    def record_attempt(self, job_key: str, attempt: kr.Attempt) -> None:
        self.calls.append(("attempt", job_key, attempt.model, attempt.outcome))

    def record_result(self, job_key: str, result: kr.Result) -> None:
        self.calls.append(("result", job_key, result.served_model, result.credits))


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=200, create_limit=500, create_window=1.0) as emulator:
        yield emulator


def _router(emu: Emulator, journal: _Journal, **kw: Any) -> tuple[Router, KieClient]:
    client = KieClient(emu.api_key, base_url=emu.base_url, read_rate=500)
    router = Router(
        _plugins(),
        client=client,
        latency_scale=1 / 200,
        allow_private_downloads=True,
        journal=journal,
        **kw,
    )
    return router, client


async def test_intent_before_each_create_and_task_id_after(emu: Emulator) -> None:
    """Each create is journaled before it is sent and its task id right after; then the
    attempt that did not serve, and the result (which carries the serving attempt: one
    transaction)."""
    emu.configure("seedream", fail_rate=1.0)
    journal = _Journal(emu)
    router, client = _router(emu, journal)
    async with router:
        result = await router.generate("a red fox", policy=LADDER, job_key="row-1")
    await client.aclose()
    seedream_task, nano_task = result.task_ids
    assert journal.calls == [
        ("intent", "row-1", 1, SEEDREAM, 0),
        ("submitted", "row-1", 1, SEEDREAM, 1, seedream_task),
        ("attempt", "row-1", SEEDREAM, "failed"),
        ("intent", "row-1", 2, NANO, 1),
        ("submitted", "row-1", 2, NANO, 2, nano_task),
        ("result", "row-1", NANO, 4.0),
    ]


async def test_ambiguous_create_is_journaled_then_reconciled(emu: Emulator) -> None:
    """A lost create answer is journaled as ambiguous; the callback's task id is journaled as
    submitted before the job finishes."""
    emu.inject("drop_connection", paths="create", count=1)
    journal = _Journal(emu)
    router, client = _router(emu, journal, webhook=WebhookConfig(listen="127.0.0.1:0"))
    async with router:
        result = await router.generate("a red fox", policy=LADDER, job_key="row-2")
    await client.aclose()
    kinds = [call[0] for call in journal.calls]
    assert kinds == ["intent", "ambiguous", "submitted", "result"]
    assert journal.calls[2][-1] == result.task_ids[0]
    assert emu.stats()["created_total"] == 1
