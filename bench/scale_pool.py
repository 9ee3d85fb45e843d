"""Benchmark: a pool of KIE accounts (``--account NAME=KEY_ENV``, repeated) against one account.

Each account is its own emulator with its own key and KIE's create limit (20 creates per 10 s,
real seconds; jobs at 20x time). The same N prompts run on one ``kierouter worker`` and the
batch process (``batch run --db``), first with one account, then with a pool of two funded
accounts and one holding 1 credit (less than one create). Measured at the emulators: creates
per account, 429s and any other refusal (a status read of a task an emulator did not create is
refused), the most creates of an account in any 10 s, and the achieved create rate (creates /
(first-to-last create + one window)) against one account's allowed 20 per 10 s. Needs
PostgreSQL (``$KIEROUTER_TEST_PG_URL``) and ``kierouter[scale]``.

    uv run python bench/scale_pool.py [--quick|--smoke]
"""

from __future__ import annotations

from typing import Any

from _common import parse_args, report, table
from _scale_cluster import pg_unavailable, run_pool

ROWS = {"full": 120, "quick": 80, "smoke": 20}


def _row(name: str, got: dict[str, Any]) -> list[Any]:
    per = got["per_account"]
    times = sorted(t for p in per.values() for t in p["times"])
    span = (times[-1] - times[0] + 10.0) if times else 0.0
    rate = (len(times) / span) / (20 / 10.0) if span else 0.0
    refused = {n: p["rejected"] for n, p in per.items() if p["rejected"]}
    return [
        name,
        got["rows"],
        " / ".join(f"{n}: {p['creates']}" for n, p in per.items()),
        sum(int(p["rejected"].get("429", 0)) for p in per.values()),
        refused or "none",
        max(p["max_creates_in_window"] for p in per.values()),
        f"{rate:.2f}×",
        f"{got['elapsed_s']:.1f}",
        got["downloaded"],
        got["hedged_rows"],
    ]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    why = pg_unavailable()
    if why is not None:
        raise SystemExit(f"bench/scale_pool.py needs PostgreSQL and kierouter[scale]: {why}")
    rows = ROWS[args.mode]
    runs: dict[str, dict[str, Any]] = {}
    runs["1 account"] = run_pool(rows=rows, accounts=1)
    runs["pool: 2 accounts + 1 with 1 credit"] = run_pool(rows=rows, accounts=2, dry=1)
    headers = (
        "run", "rows", "creates by account", "429s", "refusals", "max creates of one account "
        "/ 10 s", "rate / one account's allowed", "seconds", "downloaded", "rows escalated",
    )  # fmt: skip
    markdown = table(headers, [_row(name, got) for name, got in runs.items()])
    for got in runs.values():
        for key in ("report", "workdir", "manifest", "task_accounts", "job_accounts"):
            got.pop(key, None)
        for per in got["per_account"].values():
            per.pop("tasks", None)
            per.pop("times", None)
    report("scale_pool", args, {"runs": runs}, markdown)


if __name__ == "__main__":
    main()
