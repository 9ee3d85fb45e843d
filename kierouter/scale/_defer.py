"""A 429 on a worker's create: the row gives its queue slot back and is enqueued again later.

A 429 means KIE made no task (the create was refused, not queued), so the money rule allows the
same create again. Waiting it out inside the row's step would hold one of the worker's queue
slots (``worker_concurrency``) idle for the whole wait; instead the worker's client lets the 429
through as :class:`CreateDeferred` (it is not a :class:`~kierouter.KieRouterError`, so the run
of the job records no failed attempt and does not move on to another model). The row's step then
withdraws the create's intent in the journal (``submitting → planned``, the intent ended as
``skipped``) and the row's workflow enqueues the row again with a delay (DBOS's
``SetEnqueueOptions(delay_seconds=...)``: the workflow is ``DELAYED`` in PostgreSQL until then,
and any worker takes it after).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kierouter._errors import RateLimitedError
from kierouter._transport import KieClient

__all__ = ["CreateDeferred", "DeferringClient"]


class CreateDeferred(Exception):
    """KIE answered a create with 429: nothing was created; try again after ``delay`` s."""

    def __init__(self, delay: float, job_key: str | None) -> None:
        super().__init__(f"create for {job_key} refused with 429; enqueued again in {delay:g} s")
        self.delay = delay
        self.job_key = job_key


class DeferringClient(KieClient):
    """A :class:`KieClient` whose creates try once on a 429 and raise :class:`CreateDeferred`.

    ``default_delay``: seconds to wait when the 429 carries no ``Retry-After`` (the create
    window: a 429 says the window is full)."""

    def __init__(self, *args: Any, default_delay: float = 10.0, **kwargs: Any) -> None:
        # one try: a 429 is deferred; a connect error (nothing sent) is retried by the run of
        # the job (RetrySame), as for any router
        kwargs["create_attempts"] = 1
        super().__init__(*args, **kwargs)
        self.default_delay = default_delay
        #: creates refused with 429 and handed back to the queue
        self.deferred = 0

    async def create(
        self, path: str, body: Mapping[str, Any], *, job_key: str | None = None
    ) -> Any:
        """:meth:`KieClient.create`, but a 429 raises :class:`CreateDeferred`."""
        try:
            return await super().create(path, body, job_key=job_key)
        except RateLimitedError as exc:
            self.deferred += 1
            delay = exc.retry_after if exc.retry_after is not None else self.default_delay
            raise CreateDeferred(max(0.5, float(delay)), job_key) from None
