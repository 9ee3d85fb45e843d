"""Benchmark: several workers on one KIE key through DBOS and PostgreSQL (``--db``).

One emulator enforces KIE's create limit (20 creates per 10 s, real seconds; jobs run at 20x
time). The same N prompts are run three ways:

* **one process, SQLite**: ``kierouter batch run`` without ``--db`` (the one-machine batch);
* **3 workers + batch, Postgres**: ``kierouter batch run --db`` with three ``kierouter worker``
  processes;
* **... one SIGKILLed**: the same, with a worker killed once 30 % of the rows were created.

Measured at the emulator: 429 answers, the most creates in any sliding 10 s window, the achieved
create rate against the allowed one (creates / (first-to-last create + one window), over
20 per 10 s), tasks created per row; and credits charged against the database's budget row and
the manifest. Needs a PostgreSQL server (``$KIEROUTER_TEST_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``) and ``kierouter[scale]``.

    uv run python bench/scale_workers.py [--quick|--smoke]
"""

from __future__ import annotations

from typing import Any

from _common import parse_args, report, table
from _scale_cluster import pg_unavailable, run_cluster

ROWS = {"full": 200, "quick": 100, "smoke": 20}


def _row(name: str, got: dict[str, Any]) -> list[Any]:
    killed = got["killed"]
    return [
        name,
        got["rows"],
        got["tasks_created"],
        got["rejected_429"],
        got["max_creates_in_window"],
        f"{got['rate_vs_allowed']:.1%}",
        f"{got['elapsed_s']:.1f}",
        f"{got['credits_charged']:g} / {got['budget']['settled']:g} / {got['manifest_credits']:g}",
        got["downloaded"],
        f"{killed['worker']} ({len(killed['rows_running'])} rows)" if killed else "-",
        got["callbacks_forwarded"],
    ]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    why = pg_unavailable()
    if why is not None:
        raise SystemExit(f"bench/scale_workers.py needs PostgreSQL and kierouter[scale]: {why}")
    rows = ROWS[args.mode]
    runs: dict[str, dict[str, Any]] = {}
    runs["sqlite, 1 process"] = run_cluster(rows=rows, workers=0, kill_after=None, use_db=False)
    runs["postgres, 3 workers + batch"] = run_cluster(rows=rows, workers=3, kill_after=None)
    if args.mode != "smoke":
        runs["postgres, 3 workers + batch, 1 SIGKILLed"] = run_cluster(
            rows=rows, workers=3, kill_after=0.3
        )
    headers = (
        "run", "rows", "tasks", "429s", "max creates / 10 s", "rate / allowed", "seconds",
        "credits: charged / settled / manifest", "downloaded", "killed", "callbacks forwarded",
    )  # fmt: skip
    markdown = table(headers, [_row(name, got) for name, got in runs.items()])
    for got in runs.values():
        got.pop("report", None)
        got.pop("workdir", None)
    report("scale_workers", args, {"runs": runs}, markdown)


if __name__ == "__main__":
    main()
