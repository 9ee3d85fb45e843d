"""Event dispatch: every step of every job goes to every registered sink.

Sinks come from plugins (``kierouter_register_event_sinks``) and from ``Router(event_sinks=...)``.
A sink is a plain callable taking an :class:`~kierouter.Event`; it may return an awaitable, which
is scheduled and not waited for. A sink that raises is logged and never breaks the job. The
built-in :func:`log_sink` writes each event to the ``kierouter`` logger; events never carry the
API key (messages pass through :func:`~kierouter._errors.redact` anyway).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import redact
from ._models import Event

__all__ = ["EventBus", "EventSink", "log_sink"]

log = logging.getLogger("kierouter")

EventSink = Callable[[Event], Any]

# Steps a user watching INFO logs wants to see; the chatty ones go to DEBUG, the ones that cost
# money or lose an image to WARNING.
_QUIET = {"polled", "callback", "downloaded", "delivering", "settled"}
_WARN = {"failed", "undelivered", "overcharged"}


def _level(kind: str) -> int:
    if kind in _WARN:
        return logging.WARNING
    return logging.DEBUG if kind in _QUIET else logging.INFO


def log_sink(event: Event) -> None:
    """The built-in sink: one line per event on the ``kierouter`` logger."""
    level = _level(event.kind)
    if not log.isEnabledFor(level):
        return
    parts = [f"job {event.job_key}: {event.kind}"]
    if event.model:
        parts.append(event.model)
    if event.task_id:
        parts.append(f"task {event.task_id}")
    if event.detail:
        parts.append(f"- {event.detail}")
    log.log(level, "%s", redact(" ".join(parts)))


class EventBus:
    """Fan events out to sinks, isolating each sink's failures."""

    def __init__(
        self,
        sinks: Mapping[str, EventSink] | Iterable[EventSink] = (),
        *,
        builtin_log: bool = True,
    ) -> None:
        self._sinks: list[tuple[str, EventSink]] = []
        if builtin_log:
            self._sinks.append(("log", log_sink))
        self.add_all(sinks)
        self._pending: set[asyncio.Future[Any]] = set()

    def __repr__(self) -> str:
        return f"<EventBus sinks={[name for name, _ in self._sinks]}>"

    @property
    def sink_names(self) -> list[str]:
        """Names of the registered sinks, in call order."""
        return [name for name, _ in self._sinks]

    def add(self, name: str, sink: EventSink) -> None:
        """Register one more sink."""
        self._sinks.append((name, sink))

    def add_all(self, sinks: Mapping[str, EventSink] | Iterable[EventSink]) -> None:
        """Register sinks given as ``{name: sink}`` or as callables (named after themselves)."""
        items = sinks.items() if isinstance(sinks, Mapping) else sinks
        for item in items:
            if isinstance(item, tuple):
                self.add(item[0], item[1])
            else:
                self.add(getattr(item, "__name__", type(item).__name__), item)

    def wants(self, kind: str) -> bool:
        """Whether an event of ``kind`` would reach anyone: any sink besides the built-in log
        sink, or that sink with the ``kierouter`` logger enabled at the event's level."""
        for _, sink in self._sinks:
            if sink is not log_sink or log.isEnabledFor(_level(kind)):
                return True
        return False

    def emit(
        self,
        kind: Any,
        job_key: str,
        *,
        model: str | None = None,
        task_id: str | None = None,
        detail: str = "",
        data: dict[str, Any] | None = None,
    ) -> Event | None:
        """Build an event and hand it to every sink; returns the event.

        When no sink would see it (see :meth:`wants`), nothing is built and ``None`` is returned.
        """
        if not self.wants(kind):
            return None
        event = Event(
            kind=kind,
            job_key=job_key,
            model=model,
            task_id=task_id,
            detail=redact(detail),
            data=data or {},
        )
        self.dispatch(event)
        return event

    def dispatch(self, event: Event) -> None:
        """Hand an existing event to every sink."""
        for name, sink in self._sinks:
            try:
                outcome = sink(event)
            except Exception as exc:
                log.warning(
                    "event sink %r raised %s: %s", name, type(exc).__name__, redact(str(exc))
                )
                continue
            if outcome is not None and inspect.isawaitable(outcome):
                self._schedule(name, outcome)

    def _schedule(self, name: str, awaitable: Any) -> None:
        try:
            future = asyncio.ensure_future(awaitable)
        except RuntimeError:  # no running loop: nothing can await it
            log.warning("event sink %r returned an awaitable outside an event loop", name)
            return
        self._pending.add(future)

        def done(fut: asyncio.Future[Any]) -> None:
            self._pending.discard(fut)
            if not fut.cancelled() and fut.exception() is not None:
                exc = fut.exception()
                log.warning("event sink %r failed: %s", name, redact(str(exc)))

        future.add_done_callback(done)

    async def drain(self) -> None:
        """Wait for awaitables returned by async sinks (called when a router closes)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
