"""A kierouter worker: DBOS Transact on PostgreSQL runs every batch row as a durable workflow.

Each row of a batch is one workflow (id ``kierouter:<batch>:<row>``) on the ``kierouter-rows``
queue, whose limiter lets at most ``create_limit`` rows start per ``create_window + 0.5`` s across
all workers (the create gate then holds the key's exact limit, retries included). The workflow's
one step takes the row's jobs as far as they go with the batch's own code
(:func:`kierouter.batch._job.move_job`) on the Postgres journal, so the money rules are the
one-machine batch's: the intent of a create is committed before its POST, and a step re-run
after its worker died finds a create it left in flight as ``unknown``, never sends it again.

A worker holds a Postgres advisory lock named after its executor id for as long as it lives (a
second worker with the same id is refused). Every few seconds it looks for executors with
PENDING workflows whose lock is free — their process is gone — and hands their workflows back to
the queue through DBOS's recovery entry point; any live worker then takes them.

A callback that reaches a worker that does not run the job is sent (``DBOS.send``) to the
``kierouter-inbox:<executor>`` workflow of the worker that does, which gives it to the waiting job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from kierouter._errors import ConfigurationError
from kierouter._waiter import CallbackHint
from kierouter.batch._job import move_job
from kierouter.batch._plan import step_policy, step_request
from kierouter.batch._setup import rows_from

from ._defer import CreateDeferred
from ._gate import ensure_global_tables
from ._handle import WINDOW_MARGIN, BatchHandle, WorkerOptions, open_batch

__all__ = ["QUEUE_NAME", "Worker", "follow_row", "new_executor_id", "row_workflow_id"]

log = logging.getLogger("kierouter.scale")

QUEUE_NAME = "kierouter-rows"
INBOX_TOPIC = "kie-callback"
APP_NAME = "kierouter"
#: every worker must share it: DBOS recovers and dequeues only workflows of its own version
APP_VERSION = "kierouter-scale-1"
RECOVERY_INTERVAL = 1.0
#: a row step's result when a create got a 429 (then the seconds to wait)
DEFERRED = "deferred:"
#: a row workflow's result when it enqueued the row again (then the new workflow's id)
REQUEUED = "requeued:"

_current: Worker | None = None


def new_executor_id() -> str:
    """A fresh executor id (one per worker process)."""
    return "w-" + uuid.uuid4().hex[:12]


def row_workflow_id(batch_id: str, row_key: str, generation: int = 0) -> str:
    """The workflow id of one row of a batch (``generation`` > 0 for a resume's)."""
    suffix = f":r{generation}" if generation else ""
    return f"kierouter:{batch_id}:{row_key}{suffix}"


def _worker() -> Worker:
    if _current is None:
        raise RuntimeError("no kierouter worker runs in this process")
    return _current


@DBOS.workflow(name="kierouter.row")
async def row_workflow(batch_id: str, job_keys: list[str], deferrals: int = 0) -> str:
    """One batch row, as far as it goes (see the module docstring). A create refused with 429
    ends the row's run here: the row is enqueued again (a new workflow, ``...:d<n>``) with the
    429's delay, and this one returns ``requeued:<its id>`` (:func:`follow_row`)."""
    result = await row_step(batch_id, job_keys)
    if not result.startswith(DEFERRED):
        return result
    delay = float(result[len(DEFERRED) :])
    next_id = deferred_workflow_id(DBOS.workflow_id or "", deferrals + 1)
    await note_row_workflow(batch_id, job_keys, next_id)
    with SetWorkflowID(next_id), SetEnqueueOptions(delay_seconds=delay):
        await _worker().queue.enqueue_async(row_workflow, batch_id, job_keys, deferrals + 1)
    return REQUEUED + next_id


@DBOS.step(name="kierouter.row.requeued")
async def note_row_workflow(batch_id: str, job_keys: list[str], workflow_id: str) -> None:
    """The row's workflow from now on (``batch resume`` waits for it rather than start one)."""
    handle = await _worker().batch(batch_id)
    job = await asyncio.to_thread(handle.backend.job, job_keys[0])
    if job is not None:
        await asyncio.to_thread(handle.backend.set_row_workflow, job.spec["row_key"], workflow_id)


def deferred_workflow_id(workflow_id: str, deferrals: int) -> str:
    """The id of a row's workflow enqueued again after its ``deferrals``-th 429."""
    return re.sub(r":d\d+$", "", workflow_id) + f":d{deferrals}"


async def follow_row(handle: Any) -> Any:
    """The result of a row's workflow, following it through its re-enqueues after a 429."""
    result = await handle.get_result()
    while isinstance(result, str) and result.startswith(REQUEUED):
        handle = await DBOS.retrieve_workflow_async(result[len(REQUEUED) :])
        result = await handle.get_result()
    return result


@DBOS.step(name="kierouter.row.run")
async def row_step(batch_id: str, job_keys: list[str]) -> str:
    """Take the row's jobs on from where the journal says they stand."""
    try:
        handle = await _worker().batch(batch_id)
        return await advance_row(handle, job_keys)
    except Exception as exc:
        # the row stays where its journal says (planned, submitted, unknown, ...): the batch's
        # report lists it and `batch resume --db` takes it again; nothing is lost or resent
        log.exception("row %s of batch %s stopped on an unexpected error", job_keys, batch_id)
        return f"error: {type(exc).__name__}"


@DBOS.workflow(name="kierouter.inbox")
async def inbox_workflow(executor_id: str) -> None:
    """Callbacks other workers received for the jobs this worker runs."""
    while True:
        worker = _current
        if worker is None or worker.executor_id != executor_id or worker.stopping:
            return  # recovered by another worker after its own died: nothing to deliver to
        message = await DBOS.recv_async(INBOX_TOPIC, timeout_seconds=30)
        if message is not None:
            worker.deliver(message)


async def advance_row(handle: BatchHandle, job_keys: list[str]) -> str:
    """The runner's ``_row`` on a shared journal: the state the row's last job reached."""
    backend = handle.backend
    jobs = [job for job in (backend.job(key) for key in job_keys) if job is not None]
    if not jobs:
        return "missing"
    row = rows_from(jobs)[0]
    previous: str | None = None
    state = "planned"
    for step in row.steps:
        job = backend.job(row.job_key(step))
        if job is None or job.state == "failed":
            return "failed"
        if job.state == "submitting":
            # only a worker that died runs a row twice: its create may have reached KIE
            backend.mark_unknown(job.key, "the worker died while this create was in flight")
            job = backend.job(job.key) or job
        if job.state != "downloaded":
            if handle.gate.reached and job.state == "planned":
                return "planned"
            policy = step_policy(row, step, handle.settings.policy)
            request = step_request(row, step, previous)
            try:
                halted = await move_job(
                    handle.router, backend, handle.out_dir, job, request, policy
                )
            except CreateDeferred as deferred:
                return await _withdraw(handle, job.key, deferred)
            if halted is not None:
                log.warning("row %s: KIE refused: %s", row.key, halted)
            job = backend.job(job.key) or job
        state = job.state
        if job.state != "downloaded" or job.result is None or not job.result.urls:
            return state
        previous = job.result.urls[0]
    return state


async def _withdraw(handle: BatchHandle, job_key: str, deferred: CreateDeferred) -> str:
    """A 429 on ``job_key``'s create: no task; the job back to ``planned``, its create slot and
    budget reservation given back; the row is to be enqueued again after ``deferred.delay``."""
    reason = f"KIE answered 429 (no task made); enqueued again in {deferred.delay:g} s"
    withdrawn = await asyncio.to_thread(handle.backend.withdraw_create, job_key, reason)
    await asyncio.to_thread(handle.gate.ended, job_key)
    # the run stopped between its create and its answer: the router's balance probe counted a
    # create as running (its spend hold is released with nothing charged: the router has no
    # limit of its own, the shared gate holds the budget)
    handle.router._ctx.probe.ended()
    if not withdrawn:  # not expected: the journal did not show this create open
        job = await asyncio.to_thread(handle.backend.job, job_key)
        log.warning("job %s: 429 on a create the journal does not show open", job_key)
        return job.state if job is not None else "missing"
    log.info("job %s: 429 on create, row enqueued again in %g s", job_key, deferred.delay)
    return f"{DEFERRED}{deferred.delay}"


class Worker:
    """A worker process's DBOS runtime, its open batches and its executor lock."""

    def __init__(self, options: WorkerOptions, *, create_limit: int = 20, window: float = 10.0):
        self.options = options
        self.executor_id = options.executor_id
        self.create_limit = create_limit
        self.window = window
        self.batches: dict[str, BatchHandle] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._lock_conn: Any = None
        #: the dead-worker watch and callbacks being forwarded (each leaves the set when done)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._front: Any = None
        self.stopping = False
        #: callbacks forwarded to other workers / delivered here from others
        self.forwarded = 0
        self.delivered = 0
        #: executors whose workflows this worker handed back to the queue
        self.recovered: list[str] = []

    # -- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the executor lock, launch DBOS in this event loop, start the inbox and the
        dead-worker watch. Refuses a second worker with the same executor id."""
        global _current
        import psycopg

        if _current is not None:
            raise ConfigurationError("a kierouter worker already runs in this process")
        conn: Any = await asyncio.to_thread(
            lambda: psycopg.connect(self.options.url, autocommit=True)
        )
        got = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (self._lock_name(self.executor_id),)
        ).fetchone()[0]
        if not got:
            conn.close()
            raise ConfigurationError(
                f"a worker with executor id {self.executor_id!r} is already running on this "
                "database; give each worker its own --executor-id"
            )
        self._lock_conn = conn
        ensure_global_tables(conn)
        _current = self
        DBOS(
            config={
                "name": APP_NAME,
                "system_database_url": self.options.url,
                "executor_id": self.executor_id,
                "application_version": APP_VERSION,
                "log_level": "ERROR",
                "notification_listener_polling_interval_sec": 0.1,
            }
        )
        DBOS.launch()
        # a pool of accounts creates as fast as all its windows together; each account's own
        # limit is held by the create gate
        limit = self.create_limit * max(1, len(self.options.pool))
        self.queue = await DBOS.register_queue_async(
            QUEUE_NAME,
            limiter={"limit": limit, "period": self.window + WINDOW_MARGIN},
            worker_concurrency=self.options.concurrency,
            polling_interval_sec=0.2,
            on_conflict="always_update",
        )
        if self.options.listen:
            from kierouter._server import Server

            from ._front import CallbackFront

            host, _, port = self.options.listen.rpartition(":")
            self._front = Server(CallbackFront(self), host or "127.0.0.1", int(port))
            await self._front.start()
        with SetWorkflowID(f"kierouter-inbox:{self.executor_id}"):
            await DBOS.start_workflow_async(inbox_workflow, self.executor_id)
        self._spawn(self._watch())

    async def aclose(self) -> None:
        """Stop: close the batches, shut DBOS down, release the executor lock."""
        global _current
        self.stopping = True
        if self._front is not None:
            with contextlib.suppress(Exception):
                await self._front.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):  # a clean stop: no inbox left for others to recover
            await DBOS.cancel_workflow_async(f"kierouter-inbox:{self.executor_id}")
        for handle in list(self.batches.values()):
            with contextlib.suppress(Exception):
                await handle.aclose()
        self.batches.clear()
        with contextlib.suppress(Exception):
            DBOS.destroy(destroy_registry=False)
        if self._lock_conn is not None:
            self._lock_conn.close()  # the lock goes with the session
        _current = None

    @staticmethod
    def _lock_name(executor_id: str) -> str:
        return "kierouter-executor:" + executor_id

    # -- batches --------------------------------------------------------------------------------

    async def batch(self, batch_id: str) -> BatchHandle:
        """The batch, opened in this worker on first use."""
        handle = self.batches.get(batch_id)
        if handle is not None:
            return handle
        lock = self._opening.setdefault(batch_id, asyncio.Lock())
        async with lock:
            handle = self.batches.get(batch_id)
            if handle is None:
                handle = await open_batch(self.options, batch_id, self.forward)
                self.batches[batch_id] = handle
        return handle

    # -- dead workers ---------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RECOVERY_INTERVAL)
            try:
                await self.recover_dead()
                await self.pick_up_callbacks()
            except Exception:  # the watch must outlive a database hiccup
                log.exception("looking for dead workers failed")

    async def recover_dead(self) -> list[str]:
        """Hand the workflows of every executor whose lock is free back to the queue."""
        pending = await DBOS.list_workflows_async(status="PENDING", load_input=False)
        owners = {w.executor_id for w in pending if w.executor_id} - {self.executor_id}
        dead = [owner for owner in sorted(owners) if await asyncio.to_thread(self._dead, owner)]
        for owner in dead:
            handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [owner])
            log.warning("worker %s is gone: %d workflows back on the queue", owner, len(handles))
            self.recovered.append(owner)
        return dead

    def _dead(self, executor_id: str) -> bool:
        name = self._lock_name(executor_id)
        got = self._lock_conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))
        if not got.fetchone()[0]:
            return False
        self._lock_conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
        return True

    # -- callbacks ------------------------------------------------------------------------------

    async def pick_up_callbacks(self) -> int:
        """Give the jobs waiting here the kept callbacks other workers received for them."""
        given = 0
        for handle in list(self.batches.values()):
            if handle.router.webhook is None:
                continue
            receiver = handle.router.webhook_app
            waiting = receiver.waiting()
            if not waiting:
                continue
            kept = await asyncio.to_thread(handle.backend.callbacks_for, waiting)
            for job_key, task_id, body in kept:
                hint = CallbackHint(task_id, body)
                if job_key in receiver.waiting() and receiver.expect(job_key).offer(hint):
                    given += 1
                    log.info("kept callback for %s picked up", job_key)
        return given

    def forward(self, batch_id: str, job_key: str, task_id: str, body: Any) -> None:
        """A verified callback for a job this worker is not waiting for: send it to the worker
        whose workflow runs the job (called from the receiver, in the event loop)."""
        self._spawn(self._forward(batch_id, job_key, task_id, body))

    def _spawn(self, work: Any) -> None:
        """Run ``work`` in the background until it ends or the worker stops (a long-lived worker
        forwards callbacks for days: finished ones are not kept)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, batch_id: str, job_key: str, task_id: str, body: Any) -> None:
        handle = self.batches.get(batch_id)
        if handle is None:
            return
        job = await asyncio.to_thread(handle.backend.job, job_key)
        if job is None:
            return
        # durable first: if the message below reaches a worker that just died, the worker that
        # takes the row over finds the callback here
        await asyncio.to_thread(handle.backend.put_callback, job_key, task_id, body)
        workflow = await asyncio.to_thread(handle.backend.row_workflow, job.spec["row_key"])
        if workflow is None:
            return
        status = await DBOS.get_workflow_status_async(workflow)
        if status is None or not status.executor_id:
            return
        message = {"batch": batch_id, "job": job_key, "task": task_id, "body": body}
        if status.executor_id == self.executor_id:
            self.deliver(message)
            return
        await DBOS.send_async(f"kierouter-inbox:{status.executor_id}", message, INBOX_TOPIC)
        self.forwarded += 1
        log.info("callback for %s forwarded to worker %s", job_key, status.executor_id)

    def deliver(self, message: dict[str, Any]) -> None:
        """A callback another worker received: to the job waiting here, if it is."""
        handle = self.batches.get(str(message.get("batch")))
        job_key = str(message.get("job"))
        if handle is None or handle.router.webhook is None:
            return
        receiver = handle.router.webhook_app
        if job_key in receiver.waiting():
            hint = CallbackHint(str(message.get("task")), message.get("body"))
            if receiver.expect(job_key).offer(hint):
                self.delivered += 1
                log.info("callback for %s from another worker delivered", job_key)
