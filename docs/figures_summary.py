"""The summary table of docs/performance.md: every benchmark's headline result, from bench/results.

``docs/figures.py`` writes it between the page's summary markers.
"""

from __future__ import annotations

from figures_bench import MODES, load, pct, polling_data, seconds

__all__ = ["summary_table"]


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def _summary_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    imp = load("import_time")
    cached = imp["inside_ms"]["bytecode cached / import kierouter + load_registry()"]["median"]
    cold = imp["inside_ms"]["no bytecode cache / import kierouter + load_registry()"]["median"]
    rows.append(
        (
            "1",
            "import + plugin discovery, cold process",
            f"< {imp['target_ms']:g} ms",
            f"{cached:.1f} ms ({cold:.0f} ms with no `.pyc` cache)",
            _yes(all(imp["target_met"].values())),
        )
    )
    overhead = load("overhead")
    over = overhead["verdicts"]
    parts, met = [], []
    for transport, name in (("httpx", "stock httpx"), ("aiohttp", "httpx-aiohttp")):
        keys = [k for k in over if k.startswith(f"{transport}@")]
        ratios = ", ".join(f"{pct(over[k]['ratio'])} ({k.split('@')[1]})" for k in keys)
        parts.append(f"{name} {ratios}")
        met.append(f"{name} {_yes(all(over[k]['met'] for k in keys))}")
    lean = {k: v["vs_prebuilt"] for k, v in over.items() if "vs_prebuilt" in v}
    if lean:  # the router's own work, with HTTP request building equal on both sides
        parts.append(
            "against a raw loop that builds its requests as the router does (not the target): "
            + ", ".join(f"{pct(v['ratio'])} ({k.split('@')[1]})" for k, v in lean.items())
        )
    rows.append(
        (
            "2",
            "router throughput / raw httpx loop (in flight)",
            f"≥ {pct(overhead['target'])}",
            "; ".join(parts),
            ", ".join(met),
        )
    )
    polling = polling_data()
    reads = " / ".join(
        f"{polling[m]['reads_median']:g} (mean {polling[m]['reads_mean']:.1f})" for m in MODES
    )
    status = load("status_reads")
    targets = status["targets_met"]
    adaptive = status["results"]["adaptive polling"]
    rows.append(
        (
            "3",
            "status reads per image (median): webhook / adaptive / fixed 5 s",
            "≤ 1 / within the read budget",
            f"{reads}; adaptive {adaptive['reads_per_second']:.2f} reads/s of 9, "
            f"{adaptive['rejected_429']} × 429",
            _yes(all(targets.values())),
        )
    )
    flight = load("detect_latency")["in_flight"]
    by = {(r["inflight"], r["scheduler"]): r for r in flight["rows"]}
    counts = sorted({r["inflight"] for r in flight["rows"]})
    shared = [by[n, "shared"] for n in counts]
    per_task = [by[n, "per-task"] for n in counts]
    rows.append(
        (
            "4",
            "time to detect completion, polling (no webhook), emulated s, median (p90): shared "
            f"read scheduler vs per-task schedule at {flight['budget']:g} reads/s, by jobs in "
            "flight",
            "≤ 1.0 (≤ 2.0) at 1-10; ≤ per-task at 100-1,000; within budget, 0 × 429",
            "; ".join(
                f"{n:,}: {by[n, 'shared']['median_s']:.2f} ({by[n, 'shared']['p90_s']:.2f}) vs "
                f"{by[n, 'per-task']['median_s']:.2f} ({by[n, 'per-task']['p90_s']:.2f})"
                for n in counts
            )
            + "; both through one limiter at the budget; busiest second, 429s: shared "
            f"{max(r['busiest_second'] for r in shared)} reads, "
            f"{sum(r['rejected_429'] for r in shared)} × 429; per-task "
            f"{max(r['busiest_second'] for r in per_task)} reads, "
            f"{sum(r['rejected_429'] for r in per_task)} × 429",
            ", ".join(f"{n:,} {_yes(by[n, 'shared']['met'])}" for n in counts),
        )
    )
    delays = " / ".join(seconds(polling[m]["delay"]["median"]) for m in MODES)
    rows.append(
        (
            "4",
            "time to detect completion (median, at KIE speed): webhook / adaptive / fixed 5 s",
            "(none)",
            delays,
            "n/a",
        )
    )
    cost = load("cost_per_image")["scenarios"]
    issue = {r["strategy"]: r["credits_per_accepted"] for r in cost["issue"]["results"]}
    picky = {r["strategy"]: r["credits_per_accepted"] for r in cost["picky-judge"]["results"]}
    learned, ladder = issue["expected-cost ordering"], issue["default ladder"]
    fixed = [v for k, v in issue.items() if k.startswith("order ")]
    rows.append(
        (
            "5",
            "credits per accepted image: expected-cost ordering vs the ladder and every fixed "
            "order of its models",
            "≤ both",
            f"{learned:.3f} / ladder {ladder:.3f} / best of {len(fixed)} fixed orders "
            f"{min(fixed):.3f} (quality model {issue['always the quality model']:.2f}); a judge "
            f"rejecting Seedream: learned {picky['expected-cost ordering']:.2f} vs ladder "
            f"{picky['default ladder']:.2f}",
            _yes(learned <= ladder + 1e-9 and learned <= min(fixed) + 1e-9),
        )
    )
    scale = load("scale")
    memory, journal = scale["memory"], scale["journal"]["FULL"]
    rows.append(
        (
            "6",
            f"memory per in-flight job at {memory['jobs']:,} jobs",
            "< 10 KB",
            f"{memory['bytes_per_job'] / 1000:.1f} KB ({memory['bare_task_bytes'] / 1000:.1f}"
            " KB for a bare asyncio task)",
            _yes(memory["target_met"]),
        )
    )
    rows.append(
        (
            "6",
            "journal: batch plan rows; job lifecycles, fsynced",
            "(none)",
            f"{journal['insert_rows_per_s'] / 1000:.0f}k rows/s; "
            f"{journal['jobs_per_s']:,.0f} jobs/s",
            "n/a",
        )
    )
    routing = load("routing")["results"]
    medians = [r["uncached"]["median_us"] for r in routing.values()]
    p99s = [r["uncached"]["p99_us"] for r in routing.values()]
    rows.append(
        (
            "7",
            "routing decision, new request shape, each built-in policy",
            "< 50 µs median",
            f"{min(medians):.0f}-{max(medians):.0f} µs median "
            f"(p99 {min(p99s):.0f}-{max(p99s):.0f} µs)",
            _yes(all(r["target_met"] for r in routing.values())),
        )
    )
    rate = load("ratelimit")["results"]
    paced = [r for r in rate if r["way"] != "no client pacing"]
    rows.append(
        (
            "8",
            "create rate achieved / allowed",
            "≥ 0.9, no 429",
            ", ".join(f"{r['ratio']:.3f} ({r['way']}, {r['rejected_429']} 429s)" for r in paced),
            _yes(all(r["ratio"] >= 0.9 and r["rejected_429"] == 0 for r in paced)),
        )
    )
    return rows


def summary_table() -> str:
    """Every benchmark's headline result, as a Markdown table."""
    lines = ["| # | benchmark | target | result | met |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in _summary_rows()]
    return "\n".join(lines) + "\n"
