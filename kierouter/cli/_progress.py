"""Progress while a command works: live on a terminal, plain lines when piped, none with ``-q``.

On a terminal (stderr is one, and neither ``--json`` nor ``-v`` asked for something else) the
progress is drawn with ``rich`` and redrawn in place, one line that fits the terminal's width;
``rich`` is imported only then. Piped, or with ``--json``, progress is plain lines on stderr,
no control characters. With ``-v`` the log is the progress (each step a line), and ``-q``
shows none. The two displays here:

* :class:`JobProgress`, an event sink for ``generate``: a spinner line with the stage
  (planned → created on MODEL → waiting, read N → downloading → judged), the elapsed time and
  the credits so far; each failure, retry and escalation printed above it as it happens.
* :class:`BatchProgress`, the progress callback of a batch run: a bar with done / failed /
  running counts, credits spent of the budget, the rate and a smoothed ETA.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

__all__ = ["BatchProgress", "JobProgress", "Mode", "duration", "progress_mode"]

Mode = Literal["live", "plain", "off"]

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Seconds between repeated "waiting" lines in plain mode.
PLAIN_INTERVAL = 10.0
#: Time constant of the batch rate's moving average, seconds: an ETA that settles, not jumps.
RATE_TAU = 30.0


def progress_mode(args: Any) -> Mode:
    """How to show progress for a command run with ``args`` (its -q, -v and --json)."""
    if getattr(args, "quiet", False) or getattr(args, "verbose", 0) > 0:
        return "off"
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return "plain"
    return "live"


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``1h12m``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _credits(value: float) -> str:
    return f"{round(value, 1):g}"


class _FromEventLog(logging.Filter):
    """Drops the built-in event log sink's lines: the progress display shows those steps."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.funcName != "log_sink"


@contextlib.contextmanager
def _quiet_event_log() -> Iterator[None]:
    """While a display runs, the CLI's log handler skips the event lines it shows itself (the
    handler writes to the current ``sys.stderr``: rich's proxy while live, so a warning prints
    above the live line instead of through it)."""
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == "kierouter-cli"]
    event_filter = _FromEventLog()
    for handler in handlers:
        handler.addFilter(event_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(event_filter)


class _Display:
    """What both displays share: the mode, the rich Live (when live), plain output."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.started = time.monotonic()
        self._live: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Display:
        if self.mode == "live":
            from rich.console import Console
            from rich.live import Live

            console = Console(stderr=True, highlight=False)
            drawn: Any = self  # JobProgress and BatchProgress render themselves
            self._live = Live(
                drawn, console=console, refresh_per_second=8, transient=False, redirect_stdout=False
            )
            self._stack.enter_context(self._live)
        if self.mode != "off":
            self._stack.enter_context(_quiet_event_log())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._live = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        """A line that stays: above the live line, or a plain line."""
        if self.mode == "live" and self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(text), soft_wrap=True)
        elif self.mode != "off":
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


class JobProgress(_Display):
    """An event sink showing one job's progress (``generate``).

    ``price(model)`` gives an attempt's credits, for the "credits so far" figure.
    """

    def __init__(self, mode: Mode, price: Callable[[str], float] | None = None) -> None:
        super().__init__(mode)
        self.price = price or (lambda model: 0.0)
        self.stage = "planning"
        self.model: str | None = None
        self.task_id: str | None = None
        self.reads = 0
        self.charged = 0.0  # attempts KIE billed that did not serve the job (judge rejections)
        self.running = 0.0  # the price of the task in flight
        self.final: float | None = None
        self._last_plain = -math.inf
        self.ended = False

    @property
    def spent(self) -> float:
        """Credits so far: final when finished, else billed plus the task in flight."""
        return self.final if self.final is not None else self.charged + self.running

    def __call__(self, event: Any) -> None:
        """Take one event (an :class:`~kierouter.Event`); never raises into the job."""
        kind, model, detail = str(event.kind), event.model, event.detail or ""
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(model, event.task_id, detail, event.data or {})
        else:  # a kind this CLI does not know yet: its own words
            self._stage(detail or kind)

    # -- event kinds ---------------------------------------------------------------------------

    def _on_planned(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self._stage(f"planned: {detail}")

    def _on_created(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self.model, self.task_id, self.reads = model, task, 0
        self.running = self.price(model) if model else 0.0
        self._stage(f"created on {model}")

    def _on_polled(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self.reads += 1
        if detail.strip().lower() in ("success", "succeeded", "completed", "1"):
            self._stage("downloading")
        else:
            self._stage(f"waiting on {model}, read {self.reads}", repeat=True)

    def _on_callback(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        # a hint: one status read says whether the task succeeded (then "downloaded") or failed
        self._stage("callback received, reading the status")

    def _on_downloaded(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self._stage("downloaded" + (f" {detail}" if detail else ""))

    def _on_judged(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        if "reject" in detail.lower():
            self.charged += self.running
            self.running = 0.0
        self._stage(f"judged: {detail}" if detail else "judged")

    def _on_failed(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self.running = 0.0  # KIE bills a task that succeeded, not one that failed
        self.say(f"✗ {model or 'job'} failed: {detail}")

    def _on_retried(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        wait = data.get("wait")
        when = f" in {duration(wait)}" if isinstance(wait, int | float) else ""
        self.say(f"↻ retrying {model}{when}: {detail}")

    def _on_skipped(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self.say(f"- skipped {model}: {detail}")

    def _on_escalated(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self.say(f"↑ escalated to {model}" + (f": {detail}" if detail else ""))
        self._stage(f"escalating to {model}")

    def _on_reconciled(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        self.task_id = task
        self._stage(f"task {task} named by its callback")

    def _on_finished(self, model: Any, task: Any, detail: str, data: dict[str, Any]) -> None:
        if not data.get("ok"):  # the command prints the error itself, once
            self.stage = "stopped"
            return
        credits = data.get("credits")
        self.final = float(credits) if isinstance(credits, int | float) else self.spent
        self._stage(detail or "finished")

    # -- drawing -------------------------------------------------------------------------------

    def _stage(self, text: str, *, repeat: bool = False) -> None:
        changed = text.split(",")[0] != self.stage.split(",")[0]
        self.stage = text
        if self.mode != "plain":
            return
        now = self.elapsed
        if repeat and not changed and now - self._last_plain < PLAIN_INTERVAL:
            return
        self._last_plain = now
        self.say(self.line())

    def line(self) -> str:
        """The status line: ``[0:12] waiting on MODEL, read 2 · ≈3.5 credits``."""
        head = f"[{duration(self.elapsed)}] {self.stage}"
        if self.final is not None or not self.spent:  # the finished line names its credits
            return head
        return f"{head} · ≈{_credits(self.spent)} credits"

    def __rich__(self) -> Any:
        from rich.text import Text

        if self.final is not None:
            icon = "✓"
        elif self.ended:
            icon = "✗"
        else:
            icon = _SPINNER[int(time.monotonic() * 10) % len(_SPINNER)]
        # one line, cut with an ellipsis: a wrapped line would scroll instead of redrawing
        return Text(f"{icon} {self.line()}", no_wrap=True, overflow="ellipsis")

    def __exit__(self, *exc: object) -> None:
        self.ended = True
        super().__exit__(*exc)


class BatchProgress(_Display):
    """The progress callback of :func:`kierouter.batch.run_batch` (a snapshot dict per call)."""

    def __init__(self, mode: Mode) -> None:
        super().__init__(mode)
        self.snapshot: dict[str, Any] | None = None
        self._rate: float | None = None  # jobs per second, smoothed
        self._last: tuple[float, int] | None = None
        self._done_at_start: int | None = None

    def __call__(self, snapshot: dict[str, Any]) -> None:
        """Take one snapshot: counts, jobs, done, spent, budget."""
        now = time.monotonic()
        done = int(snapshot["done"])
        if self._done_at_start is None:
            self._done_at_start = done  # a resumed batch: earlier runs' jobs are not this rate
        if self._last is not None and now > self._last[0]:
            then, before = self._last
            instant = (done - before) / (now - then)
            if self._rate is None:
                if done > self._done_at_start:
                    self._rate = (done - self._done_at_start) / max(self.elapsed, 1e-9)
            else:
                weight = 1.0 - math.exp(-(now - then) / RATE_TAU)
                self._rate += weight * (instant - self._rate)
        self._last = (now, done)
        self.snapshot = snapshot
        if self.mode == "plain":
            self.say(f"[{duration(self.elapsed)}] {self.line(plain=True)}")

    @property
    def eta(self) -> float | None:
        """Seconds left at the smoothed rate (``None`` before the first job is done)."""
        s = self.snapshot
        if s is None or not self._rate or self._rate <= 0:
            return None
        return float(s["jobs"] - s["done"]) / self._rate

    def _parts(self, plain: bool = False) -> list[tuple[int, str]]:
        """(priority, text) of each part of the line: lower numbers are kept longer."""
        s = self.snapshot or {"counts": {}, "jobs": 0, "done": 0, "spent": 0.0}
        counts = s["counts"]
        failed = counts.get("failed", 0)
        running = sum(counts.get(k, 0) for k in ("submitting", "submitted", "succeeded"))
        unknown = counts.get("unknown", 0)
        budget = s.get("budget")
        spent = _credits(s["spent"]) + (f"/{budget:g}" if budget is not None else "")
        finished = s["jobs"] and s["done"] == s["jobs"]
        # when finished: the time it took (plain lines carry it in their [elapsed] prefix)
        when = (
            ("" if plain else f"in {duration(self.elapsed)}")
            if finished
            else (f"ETA {duration(self.eta)}")
        )
        rate = self._rate or 0.0
        parts = [
            (0, f"{s['done']}/{s['jobs']} done"),
            (1, when),
            (2, f"{failed} failed" if failed else ""),
            (3, f"{spent} credits"),
            (4, f"{running} running" if running else ""),
            (5, f"{unknown} unknown" if unknown else ""),
            (6, f"{rate * 60:.1f}/min" if rate else ""),
        ]
        return [(p, t) for p, t in parts if t]

    def line(self, width: int | None = None, *, plain: bool = False) -> str:
        """The line (without the bar), cut to ``width`` by leaving out the least needed parts."""
        parts = self._parts(plain)
        while width is not None and len(" · ".join(t for _, t in parts)) > width and parts:
            parts.remove(max(parts))
        return " · ".join(t for _, t in parts)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        width = options.max_width
        s = self.snapshot
        if s is None:
            yield Text("starting…", no_wrap=True, overflow="ellipsis")
            return
        bar = max(8, min(30, width // 5))  # a steady bar; the text gives way instead
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_row(
            ProgressBar(total=max(s["jobs"], 1), completed=s["done"], width=bar),
            Text(self.line(max(width - bar - 1, 0)), no_wrap=True, overflow="ellipsis"),
        )
        yield grid
