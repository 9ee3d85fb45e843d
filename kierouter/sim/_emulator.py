"""The :class:`Emulator`: KIE's API on a loopback port, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from kierouter._server import EMULATOR_LIMITS, Server

from ._admin import apply_settings
from ._app import SimApp
from ._scenario import Scenario, load_scenario
from ._state import DEFAULT_RESULT_TTL, DEFAULT_VISIBILITY_LAG, ModelConfig, SimState

__all__ = ["Emulator", "in_thread"]

_UNSET: Any = object()
_T = TypeVar("_T")


class Emulator:
    """KIE's API on a real HTTP server (default ``127.0.0.1``, a free port).

    Use it as ``async with Emulator(time_scale=100) as emu:`` and point a client at
    ``emu.base_url`` with ``emu.api_key``. Settings left out come from ``scenario`` (a
    :class:`~kierouter.sim.Scenario` or a TOML path) when it has them, else from the defaults:
    ``api_key="sim-key"``, ``time_scale=1.0``, ``hmac_key=None``, ``credits=100000.0``,
    ``create_limit=20`` per ``create_window=10.0`` real seconds, ``read_limit=None`` (status
    reads per second), ``seed=0`` (latencies, outcomes and faults follow the seed and the order
    of creation; task ids are random per run unless a seed is given),
    ``result_ttl`` 24 h emulated, ``visibility_lag=1.0`` (emulated seconds after a create
    during which status reads do not find the task: Market answers 422 "recordInfo is null",
    the legacy families ``data: null``), ``price_multiplier=1.0`` (KIE charging that many times
    the catalogue price, e.g. ``2.0``), ``credits_in_status=True`` (a final Market recordInfo
    carries ``creditsConsumed`` and ``updateTime``; ``False`` gives the recorded shape exactly).

    Credits are charged when a task succeeds (failed tasks cost nothing); a create answers 402
    when the balance, less the price of tasks still running, cannot pay for it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = _UNSET,
        time_scale: float = _UNSET,
        hmac_key: str | None = _UNSET,
        credits: float = _UNSET,
        create_limit: int = _UNSET,
        create_window: float = _UNSET,
        read_limit: float | None = _UNSET,
        scenario: Scenario | str | Path | None = None,
        seed: int = _UNSET,
        result_ttl: float = _UNSET,
        visibility_lag: float = _UNSET,
        price_multiplier: float = _UNSET,
        credits_in_status: bool = _UNSET,
    ) -> None:
        if isinstance(scenario, str | Path):
            scenario = load_scenario(scenario)
        self.scenario = scenario or Scenario()
        given = {
            "api_key": api_key,
            "time_scale": time_scale,
            "hmac_key": hmac_key,
            "credits": credits,
            "create_limit": create_limit,
            "create_window": create_window,
            "read_limit": read_limit,
            "seed": seed,
            "result_ttl": result_ttl,
            "visibility_lag": visibility_lag,
            "price_multiplier": price_multiplier,
            "credits_in_status": credits_in_status,
        }
        defaults: dict[str, Any] = {
            "api_key": "sim-key",
            "time_scale": 1.0,
            "hmac_key": None,
            "credits": 100000.0,
            "create_limit": 20,
            "create_window": 10.0,
            "read_limit": None,
            "seed": 0,
            "result_ttl": DEFAULT_RESULT_TTL,
            "visibility_lag": DEFAULT_VISIBILITY_LAG,
            "price_multiplier": 1.0,
            "credits_in_status": True,
        }
        settings = {**defaults, **self.scenario.defaults}
        settings.update({k: v for k, v in given.items() if v is not _UNSET})
        explicit = set(self.scenario.defaults) | {k for k, v in given.items() if v is not _UNSET}
        from kierouter._errors import register_secret

        register_secret(settings["hmac_key"])
        self.host = host
        self.port = port
        self.state = SimState(
            api_key=str(settings["api_key"]),
            time_scale=float(settings["time_scale"]),
            hmac_key=settings["hmac_key"],
            credits=float(settings["credits"]),
            create_limit=int(settings["create_limit"]),
            create_window=float(settings["create_window"]),
            read_limit=settings["read_limit"],
            seed=int(settings["seed"]),
            result_ttl=float(settings["result_ttl"]),
            id_salt="" if "seed" in explicit else secrets.token_hex(8),
            visibility_lag=float(settings["visibility_lag"]),
            price_multiplier=float(settings["price_multiplier"]),
            credits_in_status=bool(settings["credits_in_status"]),
        )
        self.app = SimApp(self.state)
        self._apply_scenario()
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run ``fn`` on the emulator's loop thread (controls may come from another thread)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(*args, **kwargs)
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            return fn(*args, **kwargs)

        async def call() -> _T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    def _apply_scenario(self) -> None:
        for spec in self.scenario.market_models.values():
            self.state.add_market_model(spec)
        for name, settings in self.scenario.models.items():
            self.state.configure(name, **settings)
        for fault in self.scenario.faults:
            options = {k: v for k, v in fault.items() if k != "kind"}
            self.state.faults.add(fault["kind"], **options)

    def __repr__(self) -> str:
        return f"<Emulator {self.base_url or 'not started'} time_scale={self.time_scale:g}>"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> Emulator:
        """Bind the port and start serving."""
        if self._server is None:
            server = Server(self.app, self.host, self.port, limits=EMULATOR_LIMITS)
            await server.start()
            self._server = server
            self.port = server.port
            self.state.base_url = server.url
            self._loop = asyncio.get_running_loop()
            self.app.start()
        return self

    async def stop(self) -> None:
        """Stop serving, close connections and cancel pending callbacks."""
        if self._server is not None:
            await self._server.close()
            self._server = None
        await self.app.aclose()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once started (empty before)."""
        return self.state.base_url

    @property
    def url(self) -> str:
        """Same as :attr:`base_url`."""
        return self.state.base_url

    @property
    def api_key(self) -> str:
        """The one key the emulator accepts; any other gets 401."""
        return self.state.api_key

    @property
    def time_scale(self) -> float:
        """Emulated seconds per real second."""
        return self.state.clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._call(self.state.set_time_scale, value)

    @property
    def balance(self) -> float:
        """Credits left."""
        return self.state.balance

    # -- control ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: ``created`` (per model), ``created_total``, ``status_reads``,
        ``credits_charged``, ``callbacks_sent``, ``callbacks_failed``, ``rejected`` (per code),
        ``balance``, plus ``succeeded``, ``failed``, ``pending``, ``downloads``, ``uploads``,
        ``upload_bytes``, ``uploads_by_endpoint`` (``stream``, ``base64``, ``url``),
        ``callback_attempts``, ``faults`` (fired per kind), ``faults_by_path`` (fired per path
        category, then kind: ``{"files": {"truncated_body": 2}}``) and ``emulated_seconds``."""
        return self._call(self.state.stats)

    def charges(self) -> dict[str, Any]:
        """The credits KIE charged, to compare with a client's books (``GET /_sim/charges``):
        ``{"total": credits, "tasks": {taskId: credits}}`` over every billed task."""
        return self._call(self.state.charges)

    def configure(
        self,
        target: str = "*",
        *,
        latency: tuple[float, float] | None = None,
        fail_rate: float | None = None,
        fail_code: str | int | None = None,
        fail_msg: str | None = None,
        never_finish_rate: float | None = None,
        price: float | None = None,
        fail_stage: str | None = None,
    ) -> ModelConfig:
        """Set behaviour of a model id, a family name or ``"*"`` for tasks created from now on.

        ``latency`` is (p50, p90) in emulated seconds; ``fail_rate`` and ``never_finish_rate``
        are probabilities; ``fail_code`` is the failed task's ``failCode`` (default ``"500"``);
        ``price`` replaces the catalogue price (credits per task, before ``price_multiplier``);
        ``fail_stage="create"`` makes failures "create-task failed" (Flux and MJ
        ``successFlag`` 2, 4o ``CREATE_TASK_FAILED``), ending early; default ``"generate"``.
        """
        return self._call(
            self.state.configure,
            target,
            latency=latency,
            fail_rate=fail_rate,
            fail_code=None if fail_code is None else str(fail_code),
            fail_msg=fail_msg,
            never_finish_rate=never_finish_rate,
            price=price,
            fail_stage=fail_stage,
        )

    def set(self, **settings: Any) -> None:
        """Change emulator-wide settings: time_scale, credits (the balance), hmac_key,
        create_limit, create_window, read_limit, result_ttl, visibility_lag, price_multiplier,
        credits_in_status."""
        self._call(apply_settings, self.app, settings)

    def inject(
        self,
        kind: str,
        *,
        rate: float = 1.0,
        count: int | None = None,
        paths: Iterable[str] | str | None = None,
        seconds: float = 35.0,
        after: int = 0,
    ) -> None:
        """Inject a fault (see :data:`~kierouter.sim.FAULT_KINDS`) on ``paths`` (default any).

        ``rate`` is the chance per matching request; ``count`` caps how often it fires;
        ``after`` lets that many matching requests through first (``after=4, count=1``: the
        fifth);
        ``seconds`` is the delay of ``slow_response`` (real seconds). ``paths="files"`` spoils
        result (and uploaded) files: ``http_500``, ``drop_connection`` (a reset),
        ``slow_response``, ``truncated_body``, ``wrong_content_type``, ``mislabeled_body``.
        """
        self._call(
            self.state.faults.add,
            kind,
            rate=rate,
            count=count,
            paths=paths,
            seconds=seconds,
            after=after,
        )

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._call(self.state.faults.clear)

    def advance(self, seconds: float) -> None:
        """Jump the emulated clock forward (tasks finish, links expire)."""
        self._call(self.state.advance, seconds)

    def reset(self, credits: float | None = None) -> None:
        """Forget tasks, files, counters, faults and model settings; refill the balance."""
        self._call(self.state.reset, credits)

    def tasks(self) -> list[dict[str, Any]]:
        """One summary per task (``GET /_sim/tasks``)."""
        return self._call(self.state.task_list)

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Every callback POST made so far: taskId, url, attempt, status, error, body."""
        return self.state.callback_log

    async def wait_callbacks(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        """Wait (real seconds) until ``count`` callbacks were delivered; returns the log."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.state.counters["callbacks_sent"] < count and loop.time() < deadline:
            self.state.settle()
            await asyncio.sleep(0.01)
        return self.state.callback_log


@contextlib.contextmanager
def in_thread(**options: Any) -> Iterator[Emulator]:
    """Run an :class:`Emulator` on its own event loop in a background thread.

    For synchronous code (``SyncRouter``, CLI tests): ``with in_thread(time_scale=100) as emu:``.
    The control methods (``configure``, ``inject``, ``advance``, ``stats``, ...) are safe to call
    from the calling thread; they run on the emulator's loop.
    """
    emulator = Emulator(**options)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kierouter-sim", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(timeout=30)
        yield emulator
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
