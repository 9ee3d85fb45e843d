"""How a batch runs (:class:`BatchSettings`), how it ended (:class:`BatchReport`), and the files
its output folder holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec

from kierouter._errors import ConfigurationError

__all__ = [
    "JOURNAL_FILE",
    "MANIFEST_FILE",
    "SECRET_FILE",
    "BatchBudgetError",
    "BatchReport",
    "BatchSettings",
]

JOURNAL_FILE = "journal.sqlite"
"""The journal of a batch, inside its output folder (SQLite, WAL)."""
MANIFEST_FILE = "manifest.jsonl"
"""One JSON line per job, inside the output folder: its row, attempts, credits and files."""
SECRET_FILE = ".callback-secret"
"""The key of the per-job callback tokens (never written to the journal)."""


class BatchBudgetError(ConfigurationError):
    """The batch's expected cost exceeds ``--budget``: it is not started."""

    def __init__(self, expected: float, budget: float, spent: float = 0.0) -> None:
        self.expected = expected
        self.budget = budget
        already = f" ({spent:g} already spent)" if spent else ""
        super().__init__(
            f"the batch is expected to cost {expected:g} credits{already}, over the budget of "
            f"{budget:g}; nothing was started. Raise --budget or trim the batch"
        )


def _finite(name: str, value: object, *, positive: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0) or value < 0:  # type: ignore[operator]
        wanted = "a finite number > 0" if positive else "a finite number >= 0"
        raise ConfigurationError(f"{name} must be {wanted}, got {value!r}")


@dataclass(kw_only=True)
class BatchSettings:
    """How a batch runs. Stored in the journal (no secrets) so ``resume`` needs only the folder.

    Attributes:
        policy: default policy of rows that name none (``auto`` when ``None``).
        budget: credits the batch may spend (expected cost checked before starting; then the
            run's spend limit: each create holds its price, and none is sent once what was
            charged plus what running tasks hold would pass it).
        concurrency: rows in progress at once (each row's steps run one after another).
        create_limit / create_window: at most this many creates per window (KIE: 20 per 10 s).
        base_url: KIE's address (``None``: ``$KIE_BASE_URL`` or api.kie.ai); an emulator's URL.
        sim: run an emulator in-process (``--sim``); ``loopback`` is implied.
        loopback: the API is a local emulator: downloads from loopback allowed, callbacks are
            received on ``127.0.0.1``.
        time_scale: the emulator's time scale (model latencies are divided by it).
        scenario: with ``sim``, a scenario TOML for the emulator (faults, model behaviour,
            Market models it does not ship; see ``docs/emulator.md``); unused without ``sim``.
        listen / public_url: receive KIE's callbacks (``host:port`` / URL KIE reaches).
        read_rate: status reads per second.
    """

    policy: str | None = None
    budget: float | None = None
    concurrency: int = 100
    create_limit: int = 20
    create_window: float = 10.0
    base_url: str | None = None
    sim: bool = False
    loopback: bool = False
    time_scale: float = 1.0
    scenario: str | None = None
    listen: str | None = None
    public_url: str | None = None
    read_rate: float = 10.0
    listen_port: int = 0

    def check(self) -> None:
        """Raise :class:`ConfigurationError` for impossible values (NaN and infinities too)."""
        if self.concurrency < 1:
            raise ConfigurationError("--concurrency must be at least 1")
        if self.create_limit < 1:
            raise ConfigurationError("--create-rate must be >= 1 and --create-window > 0")
        _finite("--create-window", self.create_window, positive=True)
        _finite("--time-scale", self.time_scale, positive=True)
        _finite("read_rate", self.read_rate, positive=True)
        if self.budget is not None:
            _finite("--budget", self.budget)

    @classmethod
    def stored(cls, meta: dict[str, Any]) -> BatchSettings:
        """The settings a batch's journal stored (unknown keys of other versions ignored)."""
        stored = meta.get("settings") or {}
        return cls(**{k: v for k, v in stored.items() if k in cls.__dataclass_fields__})


class BatchReport(msgspec.Struct, kw_only=True):
    """How a run (or resume) ended.

    ``undelivered`` lists the jobs KIE made and billed whose images could not be saved (each
    with ``job_key``, ``task_id``, ``model``, ``urls``, ``credits`` and ``reason``): ``batch
    resume`` or ``kierouter fetch`` saves them, never by creating again. ``hedged`` counts jobs
    that had a task pass its deadline and went on (see ``on_timeout``); ``extras`` the paid
    images of such tasks that were kept besides the served one.
    """

    out_dir: str
    counts: dict[str, int]
    jobs: int
    spent: float
    usd: float
    budget: float | None
    budget_reached: bool
    stopped: str | None
    unknown: list[str]
    failed: list[str]
    manifest: str
    elapsed: float
    created_this_run: int
    #: ``auth`` (KIE refused the key), ``credits`` (the account ran dry) or ``blocked``
    #: (Cloudflare refused the client) when the batch was stopped from outside
    halted: str | None = None
    undelivered: list[dict[str, Any]] = []
    hedged: int = 0
    extras: int = 0

    @property
    def complete(self) -> bool:
        """True when every job is downloaded."""
        return self.counts.get("downloaded", 0) == self.jobs
