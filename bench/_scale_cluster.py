"""A kierouter cluster on one machine, for the scale-out test and benchmark.

One emulator (``kierouter sim``, KIE's create limit: 20 per 10 s), ``workers`` worker processes
(``kierouter worker --db``; the first serves the callback front every create names, so the
callbacks of jobs the others run reach them through ``DBOS.send``) and the batch process
(``kierouter batch run --db``). Optionally SIGKILLs one worker once a share of the rows were
created. Everything it reports is measured at the emulator (creates, their times, 429s, credits
charged) or read from the database (the budget row, where each row's workflow ended).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
CLI = [sys.executable, "-m", "kierouter.cli"]


def pg_base_url() -> str:
    """The server the tests and the benchmark use (``$KIEROUTER_TEST_PG_URL``)."""
    return os.environ.get("KIEROUTER_TEST_PG_URL", DEFAULT_PG)


def pg_unavailable() -> str | None:
    """Why the scale tests cannot run here (``None`` when they can)."""
    try:
        import dbos  # noqa: F401
        import psycopg
    except ImportError as exc:
        return f"kierouter[scale] is not installed ({exc.name} missing)"
    try:
        psycopg.connect(pg_base_url(), connect_timeout=3).close()
    except Exception as exc:
        return f"no PostgreSQL at {pg_base_url()} ({type(exc).__name__})"
    return None


def fresh_database(name: str) -> str:
    """Create (or recreate) database ``name`` on the server; returns its URL."""
    import psycopg

    with psycopg.connect(pg_base_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_base_url())
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def drop_database(name: str) -> None:
    """Drop database ``name`` (closing what still uses it)."""
    import psycopg

    with psycopg.connect(pg_base_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def processes_on(db_name: str) -> Iterator[tuple[str, list[_Proc]]]:
    """A fresh database ``db_name`` (its URL) and a list for the processes started on it: on the
    way out every one still running is killed and the database dropped."""
    db = fresh_database(db_name)
    procs: list[_Proc] = []
    try:
        yield db, procs
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait()
        drop_database(db_name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Proc:
    """A child process whose stdout lines are read by a thread (readable with a timeout)."""

    def __init__(self, args: list[str], log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIE_")}
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def readline(self, what: str, timeout: float = 60) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{what} did not start within {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"{what} exited with {self.popen.wait()}")
        return line.strip()

    def rest(self, timeout: float = 30) -> str:
        """Everything it writes until it exits."""
        self.popen.wait(timeout)
        self.reader.join(timeout)
        out = []
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                out.append(line)
        return "".join(out)


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any ``window`` seconds (a sliding window over sorted times)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def run_cluster(
    *,
    rows: int,
    workers: int = 3,
    kill_after: float | None = 0.3,
    time_scale: float = 20.0,
    create_limit: int = 20,
    create_window: float = 10.0,
    workdir: Path | None = None,
    timeout: float = 600.0,
    concurrency: int = 8,
    use_db: bool = True,
    front_process: bool = False,
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run a batch of ``rows`` prompts on the cluster; return what was measured.

    ``kill_after``: once this share of the rows was created, SIGKILL the first worker (not the
    callback front) seen running rows; ``None``: no kill. ``concurrency``: rows at once per
    worker (DBOS's ``worker_concurrency``), so the rows of a window spread over the workers.
    ``use_db=False`` (with ``workers=0``): the one-machine batch on its SQLite journal.
    ``front_process``: callbacks go to ``kierouter webhook serve --db`` (which forwards every
    one with ``DBOSClient.send``) instead of the first worker's ``--listen`` front.
    ``faults``: bodies posted to the emulator's ``/_sim/inject`` before the batch starts.
    """
    import psycopg

    work = Path(workdir or tempfile.mkdtemp(prefix="kierouter-scale-"))
    db_name = f"kierouter_scale_{os.getpid()}"
    with processes_on(db_name) as (db, procs):
        sim = _Proc(
            [*CLI, "sim", "--port", "0", "--time-scale", str(time_scale),
             "--create-limit", str(create_limit), "--create-window", str(create_window)],
            work / "sim.log",
        )  # fmt: skip
        procs.append(sim)
        sim_url = sim.readline("the emulator")
        sim.readline("the emulator")
        for fault in faults or ():
            httpx.post(sim_url + "/_sim/inject", json=fault, timeout=10).raise_for_status()
        front = f"http://127.0.0.1:{_free_port()}"
        target = ["--sim-url", sim_url, "--time-scale", str(time_scale)]
        names = [f"w{i + 1}" for i in range(workers)]
        worker_procs: dict[str, _Proc] = {}
        if front_process:
            port = str(urlsplit(front).port)
            webhook = _Proc(
                [*CLI, "-v", "webhook", "serve", "--db", db, "--port", port], work / "front.log"
            )
            procs.append(webhook)
            webhook.readline("the callback front")
        for i, name in enumerate(names):
            listen = ["--listen", urlsplit(front).netloc] if i == 0 and not front_process else []
            proc = _Proc(
                [*CLI, "-v", "worker", "--db", db, *target, "--executor-id", name,
                 "--callback-url", front, "--concurrency", str(concurrency), *listen],
                work / f"{name}.log",
            )  # fmt: skip
            procs.append(proc)
            worker_procs[name] = proc
        for name, proc in worker_procs.items():
            proc.readline(f"worker {name}")
        prompts = work / "rows.txt"
        prompts.write_text("".join(f"a lighthouse at dusk, study {i}\n" for i in range(rows)))
        out = work / "out"
        started = time.monotonic()
        where = ["--db", db, "--public-url", front] if use_db else []
        batch = _Proc(
            [*CLI, "batch", "run", str(prompts), "--out", str(out), *where, *target,
             "--budget", str(rows * 10), "--json", "--no-log", "--concurrency", str(concurrency)],
            work / "batch.log",
        )  # fmt: skip
        procs.append(batch)
        killed: dict[str, Any] = {}
        # any worker but the callback front may be killed: the first seen running rows
        victims = names if front_process else names[1:]
        with httpx.Client(timeout=10) as http, psycopg.connect(db, autocommit=True) as conn:
            while batch.popen.poll() is None:
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"the batch did not finish within {timeout:g} s")
                time.sleep(0.2)
                if kill_after is None or killed or not victims:
                    continue
                created = http.get(sim_url + "/_sim/stats").json()["created_total"]
                if created < rows * kill_after:
                    continue
                running: list[str] = []
                for victim in victims:
                    running = [
                        r[0]
                        for r in conn.execute(
                            "SELECT workflow_uuid FROM dbos.workflow_status WHERE executor_id "
                            "= %s AND status = 'PENDING' AND name = 'kierouter.row'",
                            (victim,),
                        )
                    ]
                    if running:
                        break
                if running and (out / ".kierouter-db").exists():
                    # not while a create is between its intent and its answer: such a row is
                    # rightly left unknown (never resent); tests/test_scale.py kills one in
                    # flight on purpose
                    schema = "kr_" + (out / ".kierouter-db").read_text().strip()
                    sending = conn.execute(
                        f"SELECT COUNT(*) FROM \"{schema}\".jobs WHERE state = 'submitting'"
                    ).fetchone()[0]
                    if sending:
                        continue
                    worker_procs[victim].popen.send_signal(signal.SIGKILL)
                    worker_procs[victim].popen.wait()
                    killed = {"worker": victim, "rows_running": running, "at_creates": created}
            elapsed = time.monotonic() - started
            report = json.loads(batch.rest() or "{}")
            stats = http.get(sim_url + "/_sim/stats").json()
            tasks = http.get(sim_url + "/_sim/tasks").json()
            charges = http.get(sim_url + "/_sim/charges").json()
            callbacks = http.get(sim_url + "/_sim/callbacks").json()
            lim, reserved, settled = (None, 0.0, report.get("spent"))
            withdrawn_429 = 0
            if use_db:
                schema = "kr_" + (out / ".kierouter-db").read_text().strip()
                lim, reserved, settled = conn.execute(
                    f'SELECT lim, reserved, settled FROM "{schema}".budget WHERE id = 1'
                ).fetchone()
                # creates answered 429: their intents ended as skipped (no task), row requeued
                withdrawn_429 = conn.execute(
                    f"SELECT COUNT(*) FROM \"{schema}\".attempts WHERE outcome = 'skipped' "
                    "AND reason LIKE '%%429%%' AND task_id IS NULL"
                ).fetchone()[0]
            ended = dict(
                conn.execute(
                    "SELECT workflow_uuid, executor_id || ':' || status FROM dbos.workflow_status "
                    "WHERE name = 'kierouter.row'"
                ).fetchall()
                if use_db
                else []
            )
        status: dict[str, Any] = {}
        if use_db:  # progress as any machine sees it: read from the database
            shown = subprocess.run(
                [*CLI, "batch", "status", str(out), "--db", db, "--json"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            status = json.loads(shown.stdout) if shown.returncode == 0 else {"error": shown.stderr}
        stopped: dict[str, str] = {}
        for name, proc in worker_procs.items():
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
                try:
                    stopped[name] = proc.rest()
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    images = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".jpg", ".jpeg", ".webp"))
    real = sorted((t["createTime"] / 1000.0) / time_scale for t in tasks)
    first, last = (real[0], real[-1]) if real else (0.0, 0.0)
    windows = -(-len(real) // create_limit) if real else 0
    ideal = (windows - 1) * create_window if windows else 0.0
    forwarded = delivered = 0
    for text in stopped.values():
        match = re.search(r"(\d+) callbacks forwarded to other workers, (\d+) delivered", text)
        if match:
            forwarded += int(match[1])
            delivered += int(match[2])
    recovered = killed.get("rows_running", [])
    if front_process:
        forwarded += (work / "front.log").read_text().count(" sent to worker ")
    return {
        "rows": rows,
        "workers": workers,
        "time_scale": time_scale,
        "create_limit": create_limit,
        "create_window": create_window,
        "elapsed_s": round(elapsed, 2),
        "report": report,
        "tasks_created": int(stats["created_total"]),
        "rejected_429": int(stats["rejected"].get("429", 0)),
        "max_creates_in_window": max_in_window(real, create_window),
        "create_span_s": round(last - first, 3),
        # the fastest a perfect limiter could create them: full windows back to back
        "ideal_span_s": ideal,
        "rate_vs_allowed": round(
            (len(real) / (last - first + create_window)) / (create_limit / create_window), 4
        )
        if real
        else 0.0,
        "credits_charged": float(charges["total"]),
        "budget": {"limit": lim, "reserved": reserved, "settled": settled},
        "manifest_credits": round(sum(float(m.get("credits", 0.0)) for m in manifest), 6),
        "manifest_rows": len(manifest),
        "downloaded": sum(1 for m in manifest if m.get("state") == "downloaded"),
        "images": len(images),
        "callbacks_posted": len(callbacks),
        "callbacks_to_front": sum(1 for c in callbacks if c["url"].startswith(front)),
        "callbacks_forwarded": forwarded,
        "callbacks_delivered_from_others": delivered,
        "withdrawn_429": int(withdrawn_429),
        # rows enqueued again after a 429 (their workflows' ids end in :d<n>)
        "requeued_workflows": sum(1 for w in ended if re.search(r":d\d+$", w)),
        "failed_rows": sum(1 for m in manifest if m.get("state") == "failed"),
        "killed": killed,
        "killed_rows_finished_by": sorted({ended.get(w, "?") for w in recovered}),
        "rows_by_executor": _by_executor(ended),
        "status": status,
        "workdir": str(work),
    }


def _by_executor(ended: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in ended.values():
        out[value] = out.get(value, 0) + 1
    return out


def run_pool(
    *,
    rows: int,
    accounts: int,
    dry: int = 0,
    time_scale: float = 20.0,
    workdir: Path | None = None,
    concurrency: int = 12,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """A ``--db`` batch on one worker and the batch process, both given a pool of ``accounts``
    funded KIE accounts plus ``dry`` accounts holding 1 credit, each account its own emulator
    (its own key, 20 creates per 10 s, no visibility lag: a status read of a task the emulator
    does not know is refused with 422). Returns per-account creates and refusals, the most
    creates of an account in any 10 s, the journal's task accounts and the manifest."""
    import psycopg

    work = Path(workdir or tempfile.mkdtemp(prefix="kierouter-pool-"))
    db_name = f"kierouter_pool_{os.getpid()}"
    names = [f"acct{i + 1}" for i in range(accounts)] + [f"dry{i + 1}" for i in range(dry)]
    sims: dict[str, str] = {}
    with processes_on(db_name) as (db, procs):
        for i, name in enumerate(names):
            credits = ["--credits", "1"] if name.startswith("dry") else []
            sim = _Proc(
                [*CLI, "sim", "--port", "0", "--time-scale", str(time_scale),
                 "--api-key", f"key-{name}-secret", "--seed", str(11 + i), *credits],
                work / f"sim-{name}.log",
            )  # fmt: skip
            procs.append(sim)
            sims[name] = sim.readline(f"emulator {name}")
            httpx.post(sims[name] + "/_sim/configure", json={"visibility_lag": 0}, timeout=10)
            os.environ[f"POOL_KEY_{name.upper()}"] = f"key-{name}-secret"
        pool = [
            arg
            for name, url in sims.items()
            for arg in ("--account", f"{name}=POOL_KEY_{name.upper()}@{url}")
        ]
        front = f"http://127.0.0.1:{_free_port()}"
        target = ["--sim-url", sims[names[0]], "--time-scale", str(time_scale)]
        worker = _Proc(
            [*CLI, "-v", "worker", "--db", db, *target, "--executor-id", "w1",
             "--callback-url", front, "--listen", urlsplit(front).netloc,
             "--concurrency", str(concurrency), *pool],
            work / "w1.log",
        )  # fmt: skip
        procs.append(worker)
        worker.readline("the worker")
        prompts = work / "rows.txt"
        prompts.write_text("".join(f"a windmill at dawn, study {i}\n" for i in range(rows)))
        out = work / "out"
        started = time.monotonic()
        batch = _Proc(
            [*CLI, "batch", "run", str(prompts), "--out", str(out), "--db", db, *target,
             "--public-url", front, "--budget", str(rows * 10), "--json", "--no-log",
             "--concurrency", str(concurrency), *pool],
            work / "batch.log",
        )  # fmt: skip
        procs.append(batch)
        report = json.loads(batch.rest(timeout=timeout) or "{}")
        elapsed = time.monotonic() - started
        per: dict[str, dict[str, Any]] = {}
        with httpx.Client(timeout=10) as http:
            for name, url in sims.items():
                tasks = http.get(url + "/_sim/tasks").json()
                stats = http.get(url + "/_sim/stats").json()
                times = sorted(t["createTime"] / 1000.0 / time_scale for t in tasks)
                per[name] = {
                    "tasks": sorted(t["taskId"] for t in tasks),
                    "creates": len(tasks),
                    "rejected": stats["rejected"],
                    "max_creates_in_window": max_in_window(times, 10.0),
                    "credits_charged": stats["credits_charged"],
                    "times": times,
                }
        schema = "kr_" + (out / ".kierouter-db").read_text().strip()
        with psycopg.connect(db, autocommit=True) as conn:
            task_accounts = dict(
                conn.execute(f'SELECT task_id, account FROM "{schema}".task_accounts').fetchall()
            )
            job_accounts = dict(
                conn.execute(
                    f'SELECT j.task_id, a.account FROM "{schema}".jobs j '
                    f'JOIN "{schema}".job_accounts a ON a.job_key = j.key'
                ).fetchall()
            )
        worker.popen.send_signal(signal.SIGTERM)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {
        "rows": rows,
        "accounts": names,
        "elapsed_s": round(elapsed, 2),
        "report": report,
        "per_account": per,
        "task_accounts": task_accounts,
        "job_accounts": job_accounts,
        "manifest": manifest,
        "tasks_created": sum(p["creates"] for p in per.values()),
        "downloaded": sum(1 for m in manifest if m.get("state") == "downloaded"),
        "hedged_rows": sum(1 for m in manifest if m.get("hedged")),
        "workdir": str(work),
    }
