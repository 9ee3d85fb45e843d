"""Where a callback meets its job: :class:`CallbackHint` and :class:`CallbackWaiter`.

Public through :mod:`kierouter.webhooks`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

__all__ = ["CallbackHint", "CallbackWaiter"]


class CallbackHint:
    """A verified callback: which task it names and its body (not trusted until confirmed)."""

    __slots__ = ("body", "received_at", "task_id")

    def __init__(self, task_id: str, body: Any) -> None:
        self.task_id = task_id
        self.body = body
        self.received_at = time.time()

    def __repr__(self) -> str:
        return f"<CallbackHint task {self.task_id}>"


class CallbackWaiter:
    """Where callbacks for one job land; the job's coroutine waits on it.

    Thread-safe: the receiver may run in another thread's event loop (e.g. a ``SyncRouter``
    whose receiver is mounted in a separate web server).
    """

    def __init__(self, job_key: str) -> None:
        self.job_key = job_key
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._hints: list[CallbackHint] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CallbackWaiter {self.job_key} hints={len(self._hints)}>"

    def offer(self, hint: CallbackHint) -> bool:
        """Queue a hint; False when the same task already hinted (a duplicate)."""
        with self._lock:
            if hint.task_id in self._seen:
                return False
            self._seen.add(hint.task_id)
            self._hints.append(hint)
        if _running_loop() is self._loop:
            self._event.set()
        else:
            self._loop.call_soon_threadsafe(self._event.set)
        return True

    def rearm(self, task_id: str) -> None:
        """Accept a later callback for ``task_id`` again (its confirmation read said pending)."""
        with self._lock:
            self._seen.discard(task_id)

    def take(self) -> list[CallbackHint]:
        """Return and clear the queued hints."""
        with self._lock:
            hints, self._hints = self._hints, []
            self._event.clear()
        return hints

    async def wait(self, timeout: float | None) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for a hint; True when one is queued."""
        if self._hints:
            return True
        if timeout is not None and timeout <= 0:
            return False
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return bool(self._hints)
        return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
