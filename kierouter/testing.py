"""Test helpers for kierouter and its plugins: an opt-in pytest plugin backed by the emulator.

Enable it in a ``conftest.py``::

    pytest_plugins = ["kierouter.testing"]

Fixtures (async; pytest-asyncio in ``auto`` mode):

* ``kie_emulator`` — a running :class:`kierouter.sim.Emulator` at ``time_scale=1000`` (a
  46 s job takes 46 ms), fresh for each test. Give it a scenario (settings, model behaviour,
  faults, Market models it does not ship) with the ``kie_scenario`` marker or by indirect
  parametrization, as a dict of the scenario TOML's tables, a TOML path or a ``Scenario``::

      @pytest.mark.kie_scenario({"market_models": {"acme/imagine-1": {"price": 0.5,
                                                                      "latency": [5, 10]}}})
      async def test_acme(kie_client): ...
* ``kie_client`` — a :class:`kierouter.KieClient` bound to that emulator and its key.
* ``kie_callbacks`` — a running :class:`CallbackRecorder`: a loopback endpoint to pass as a
  task's ``callBackUrl`` that keeps every callback the emulator POSTs to it.

And a helper usable with or without the fixtures::

    status = await run_task(kie_client, provider, card, ImageRequest(prompt="a fox"))
    assert status.state == "success"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kierouter._models import ImageRequest, ModelCard, TaskStatus
    from kierouter._transport import KieClient
    from kierouter.provider import Provider
    from kierouter.sim import Emulator, Scenario

__all__ = ["CallbackRecorder", "kie_callbacks", "kie_client", "kie_emulator", "run_task"]

_POLL_INTERVAL = 0.01
_NOT_VISIBLE = "recordInfo is null"  # KIE Market: the task is not readable (yet)


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
    Validation errors from ``provider.prepare`` and KIE errors from the create propagate, and so
    do errors of status reads, except KIE's "not found yet" answers (``data: null``, 404, 422
    "recordInfo is null"), which are read again: a task is not readable at once after its create.
    """
    from kierouter._errors import KieError, NotFoundError, TaskTimeoutError

    prepared = provider.prepare(card, request, seed=request.seed, callback_url=callback_url)
    data = await client.create(prepared.path, prepared.body)
    task_id = provider.parse_create(data)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            data = await client.read(provider.status_path, provider.status_params(task_id))
            status = provider.parse_status(data, task_id=task_id)
        except KieError as exc:
            if not (isinstance(exc, NotFoundError) or _NOT_VISIBLE in str(exc)):
                raise
            seen = "not found"
        else:
            if status.done:
                return status
            seen = status.raw_state or "pending"
        if loop.time() >= deadline:
            raise TaskTimeoutError(
                f"task {task_id} on {card.id} was still {seen} after {timeout:g} s",
                task_id=task_id,
            )
        await asyncio.sleep(_POLL_INTERVAL)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``kie_scenario`` marker."""
    config.addinivalue_line(
        "markers",
        "kie_scenario(scenario): the kie_emulator fixture runs this scenario (a dict of the "
        "scenario TOML's tables, a TOML path or a kierouter.sim.Scenario; keywords work too: "
        "kie_scenario(market_models={...}))",
    )


def _scenario(request: pytest.FixtureRequest) -> Scenario | None:
    """The scenario a test asks for: ``kie_scenario`` marker, else indirect parameter."""
    from kierouter.sim import Scenario, load_scenario

    marker = request.node.get_closest_marker("kie_scenario")
    if marker is not None:
        if len(marker.args) > 1 or (marker.args and marker.kwargs):
            raise TypeError("kie_scenario takes one scenario, or its tables as keywords")
        given: Any = marker.args[0] if marker.args else dict(marker.kwargs)
    else:
        given = getattr(request, "param", None)
    if given is None or isinstance(given, Scenario):
        return given
    if isinstance(given, str | os.PathLike):
        return load_scenario(os.fspath(given))
    if isinstance(given, dict):
        return Scenario.from_dict(given, source="kie_scenario")
    raise TypeError(f"kie_scenario takes a dict, a TOML path or a Scenario, not {given!r}")


@pytest.fixture
async def kie_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """A running KIE emulator on a free loopback port, ``time_scale=1000`` unless the test's
    scenario (``kie_scenario`` marker or indirect parameter) sets another."""
    from kierouter.sim import Emulator

    scenario = _scenario(request)
    options: dict[str, Any] = {}
    if scenario is None or "time_scale" not in scenario.defaults:
        options["time_scale"] = 1000.0
    async with Emulator(scenario=scenario, **options) as emulator:
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


class CallbackRecorder:
    """An ASGI app that records the callbacks POSTed to it (serve it on loopback).

    Each call is kept as ``{"path", "query", "headers", "body"}`` (``body`` decoded from JSON) in
    :attr:`calls`; :attr:`bodies` lists the bodies alone. Set :attr:`fail_first` to answer the
    first N calls with HTTP 500 (to see a sender retry). :attr:`url` is the server's base URL
    once it runs (the ``kie_callbacks`` fixture sets it).
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_first = 0
        self.url = ""
        self._arrived = asyncio.Event()

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [call["body"] for call in self.calls]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append(
            {
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": json.loads(raw),
            }
        )
        self._arrived.set()
        status = 500 if len(self.calls) <= self.fail_first else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b'{"code":200,"msg":"success"}'})

    async def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """Wait until ``count`` calls arrived (or ``timeout`` real seconds); return them all."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.calls) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        return self.calls


@pytest.fixture
async def kie_callbacks() -> AsyncIterator[CallbackRecorder]:
    """A running :class:`CallbackRecorder` on a free loopback port."""
    from kierouter._server import serve

    recorder = CallbackRecorder()
    async with serve(recorder) as server:
        recorder.url = server.url
        yield recorder
