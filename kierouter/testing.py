"""Test helpers for kierouter and its plugins: an opt-in pytest plugin backed by the emulator.

Enable it in a ``conftest.py``::

    pytest_plugins = ["kierouter.testing"]

Fixtures (async; pytest-asyncio in ``auto`` mode):

* ``kie_emulator`` — a running :class:`kierouter.sim.Emulator` at ``time_scale=1000`` (a
  46 s job takes 46 ms), fresh for each test.
* ``kie_client`` — a :class:`kierouter.KieClient` bound to that emulator and its key.

And a helper usable with or without the fixtures::

    status = await run_task(kie_client, provider, card, ImageRequest(prompt="a fox"))
    assert status.state == "success"
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kierouter._models import ImageRequest, ModelCard, TaskStatus
    from kierouter._transport import KieClient
    from kierouter.provider import Provider
    from kierouter.sim import Emulator

__all__ = ["kie_client", "kie_emulator", "run_task"]

_POLL_INTERVAL = 0.01


async def run_task(
    client: KieClient,
    provider: Provider,
    card: ModelCard,
    request: ImageRequest,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the contract names it; it bounds polling
    callback_url: str | None = None,
) -> TaskStatus:
    """Create one task for ``card`` and poll it to a final state; return the parsed status.

    ``timeout`` is in real seconds; :class:`kierouter.TaskTimeoutError` when it runs out.
    Validation errors from ``provider.prepare`` and KIE errors from the create propagate.
    """
    from kierouter._errors import TaskTimeoutError

    prepared = provider.prepare(card, request, seed=request.seed, callback_url=callback_url)
    data = await client.create(prepared.path, prepared.body)
    task_id = provider.parse_create(data)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        data = await client.read(provider.status_path, provider.status_params(task_id))
        status = provider.parse_status(data, task_id=task_id)
        if status.done:
            return status
        if loop.time() >= deadline:
            raise TaskTimeoutError(
                f"task {task_id} on {card.id} was still {status.raw_state or 'pending'} "
                f"after {timeout:g} s",
                task_id=task_id,
            )
        await asyncio.sleep(_POLL_INTERVAL)


@pytest.fixture
async def kie_emulator() -> AsyncIterator[Emulator]:
    """A running KIE emulator on a free loopback port, ``time_scale=1000``."""
    from kierouter.sim import Emulator

    async with Emulator(time_scale=1000.0) as emulator:
        yield emulator


@pytest.fixture
async def kie_client(kie_emulator: Emulator) -> AsyncIterator[KieClient]:
    """A :class:`kierouter.KieClient` pointed at ``kie_emulator`` with its key."""
    from kierouter._transport import KieClient

    # reads are cheap at time_scale=1000; creates keep KIE's 20 per 10 s like the emulator
    client = KieClient(kie_emulator.api_key, base_url=kie_emulator.base_url, read_rate=1000.0)
    try:
        yield client
    finally:
        await client.aclose()
