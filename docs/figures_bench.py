"""The benchmarks' figures, from bench/results.

Each benchmark writes ``bench/results/NAME.json`` (its full run; ``--quick`` runs write
``NAME-quick.json``, not used here). A figure shows the benchmark's headline comparison with its
target; ``figures_summary.py`` states every result in one table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from figures_theme import Theme

__all__ = ["FIGURES", "MODES", "RESULTS", "load", "pct", "polling_data", "seconds"]

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
MODES = ("webhook", "adaptive polling", "fixed 5 s polling")


def load(name: str) -> dict[str, Any]:
    """The full run's results of benchmark ``name``, without the machine description."""
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text("utf-8"))
    data.pop("machine", None)
    data.pop("when", None)
    return data


def seconds(value: float) -> str:
    """``value`` seconds, in ms below one second."""
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def pct(ratio: float) -> str:
    """``ratio`` as a whole percentage."""
    return f"{ratio * 100:.0f} %"


def _target_line(ax: Any, value: float, label: str, theme: Theme, *, vertical: bool = True) -> None:
    draw = ax.axvline if vertical else ax.axhline
    draw(value, color=theme.bad, ls="--", lw=1.2, zorder=1)
    if vertical:
        ax.annotate(
            label,
            (value, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -2),
            textcoords="offset points",
            va="top",
            fontsize=9.5,
            color=theme.bad,
        )
    else:
        ax.annotate(
            label,
            (1, value),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 4),
            textcoords="offset points",
            ha="right",
            fontsize=9.5,
            color=theme.bad,
        )


def _barh(
    ax: Any,
    labels: list[str],
    values: list[float],
    colours: list[str],
    text: list[str],
    theme: Theme,
    *,
    clear: float = 0.0,
) -> None:
    """Horizontal bars, first on top, each with its value written after it (after ``clear``, the
    position of a target line, when the bar ends just before it)."""
    rows = range(len(labels))
    ax.barh(rows, values, color=colours, height=0.62)
    ax.set_yticks(rows, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    near = 0.15 * max(*values, clear)
    for row, (value, words) in enumerate(zip(values, text, strict=True)):
        # text that would start just before the target line starts after it
        start = clear if 0 < clear - value < near else value
        ax.annotate(
            words,
            (start, row),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=10,
            color=theme.text,
        )


# -- 1. import time --------------------------------------------------------------------------


def draw_import_time(data: dict[str, Any], theme: Theme) -> Any:
    """Median import times, cached and uncached, against the target."""
    inside = data["inside_ms"]
    labels, values, colours = [], [], []
    for key, stats in inside.items():
        cache, what = key.split(" / ", 1)
        labels.append(f"{what}\n{cache}")
        values.append(stats["median"])
        colours.append(theme.muted if "baseline" in what else theme.series[0])
    fig, ax = plt.subplots(figsize=(8, 4.6))
    _barh(
        ax, labels, values, colours, [f"{v:.1f} ms" for v in values], theme, clear=data["target_ms"]
    )
    _target_line(ax, data["target_ms"], f"target < {data['target_ms']:g} ms", theme)
    ax.set_xlim(0, max(*values, data["target_ms"]) * 1.15)
    ax.tick_params(axis="y", labelsize=10)
    ax.set_xlabel("milliseconds inside a cold process (median)")
    ax.set_title("1. Import and plugin discovery")
    return fig


# -- 2. overhead -----------------------------------------------------------------------------


def draw_overhead(data: dict[str, Any], theme: Theme) -> Any:
    """Router throughput as a share of the raw loop's, per transport and concurrency."""
    verdicts = data["verdicts"]
    labels = [f"{k.split('@')[0]}, {k.split('@')[1]} in flight" for k in verdicts]
    values = [v["ratio"] * 100 for v in verdicts.values()]
    colours = [theme.good if v["met"] else theme.bad for v in verdicts.values()]
    text = [
        f"{pct(v['ratio'])} ({v['extra_cpu_ms_per_job']:+.2f} ms CPU per job)"
        for v in verdicts.values()
    ]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    _barh(
        ax,
        [lbl.replace("aiohttp", "httpx-aiohttp") for lbl in labels],
        values,
        colours,
        text,
        theme,
        clear=data["target"] * 100,
    )
    _target_line(ax, data["target"] * 100, f"target ≥ {pct(data['target'])}", theme)
    ax.set_xlim(0, max(values) * 1.45)
    ax.set_xlabel("router jobs/s as % of a raw httpx loop's, same transport")
    ax.set_title("2. Router overhead vs raw HTTP")
    return fig


# -- 3 and 4. polling ------------------------------------------------------------------------


def polling_data() -> dict[str, Any]:
    """Reads per image (benchmark 3) and detection delay (benchmark 4) of each way."""
    reads, delay = load("status_reads"), load("detect_latency")
    scale = delay["time_scale"] / 1000  # real ms -> seconds at KIE speed
    return {
        mode: {
            "reads_median": reads["results"][mode]["median"],
            "reads_mean": reads["results"][mode]["mean"],
            "reads_p90": reads["results"][mode]["p90"],
            # the webhook path is not scaled by the emulator's time: its delay is real
            "delay": {
                k: delay["results"][mode][k] * (1 / 1000 if mode == "webhook" else scale)
                for k in ("median", "q1", "q3", "p90")
            },
        }
        for mode in MODES
    }


_POLLING_LABELS = {
    "webhook": (12, 0, "left", "center"),
    "adaptive polling": (0, 14, "center", "bottom"),
}


def draw_polling(data: dict[str, Any], theme: Theme) -> Any:
    """Status reads per image against the delay before the client knows a task finished."""
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for colour, mode in zip(theme.series, MODES, strict=False):
        row = data[mode]
        d = row["delay"]
        x = row["reads_mean"]
        ax.errorbar(
            x,
            d["median"],
            yerr=[[d["median"] - d["q1"]], [d["q3"] - d["median"]]],
            fmt="o",
            color=colour,
            ms=9,
            capsize=4,
            lw=1.5,
            zorder=3,
        )
        label = (
            f"{mode}\n{row['reads_mean']:.2f} reads per image (median {row['reads_median']:g}),"
            f"\nknown {seconds(d['median'])} after done (median)"
        )
        # the webhook's label beside its point; the two polling ways' above and below theirs,
        # which are close together
        dx, dy, ha, va = _POLLING_LABELS.get(mode, (0, -16, "center", "top"))
        ax.annotate(
            label,
            (x, d["median"]),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=10,
            color=theme.text,
        )
    ax.set_yscale("log")
    ax.set_xlim(0, max(r["reads_mean"] for r in data.values()) * 1.5)
    ax.set_ylim(0.001, 300)
    ticks = [0.001, 0.01, 0.1, 1, 10]
    ax.set_yticks(ticks, [seconds(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("status reads per image (mean)")
    ax.set_ylabel("seconds from done to known\n(median and IQR, at KIE speed, log)")
    ax.set_title("3-4. Polling: status reads vs detection delay")
    return fig


def draw_read_scheduler(data: dict[str, Any], theme: Theme) -> Any:
    """Detection delay without a webhook, per-task schedule vs the shared read scheduler at one
    read budget, by the number of jobs in flight."""
    flight = data["in_flight"]
    rows = flight["rows"]
    counts = sorted({r["inflight"] for r in rows})
    ways = ("per-task", "shared")
    names = {"per-task": "per-task schedule (before)", "shared": "shared read scheduler"}
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.38
    for i, (way, colour) in enumerate(zip(ways, (theme.series[2], theme.series[1]), strict=True)):
        found = {r["inflight"]: r for r in rows if r["scheduler"] == way}
        xs = [c + (i - 0.5) * width for c in range(len(counts))]
        medians = [found[n]["median_s"] for n in counts]
        p90s = [found[n]["p90_s"] for n in counts]
        ax.bar(xs, medians, width * 0.92, color=colour, label=names[way], zorder=2)
        ax.scatter(xs, p90s, marker="_", s=260, color=theme.text, zorder=3, lw=2)
        for x, top, median, n in zip(xs, p90s, medians, counts, strict=True):
            ax.annotate(
                f"{seconds(median)}\n{found[n]['reads_per_image_mean']:.1f} r/img\n"
                f"peak {found[n]['busiest_second']}/s\n{found[n]['rejected_429']}×429",
                (x, max(top, median)),
                xytext=(0, 5),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
                color=theme.text,
            )
    ax.axhline(
        1.0,
        color=theme.bad,
        ls="--",
        lw=1.2,
        zorder=1,
        label="target: median ≤ 1 s with 1 and 10 in flight",
    )
    ax.set_yscale("log")
    ax.set_ylim(0.03, 100000)
    ticks = [0.1, 1, 10, 100]
    ax.set_yticks(ticks, [seconds(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xticks(range(len(counts)), [f"{n:,} in flight" for n in counts])
    ax.set_ylabel("seconds from done to known\n(median bar, p90 tick; emulated, log)")
    ax.set_title(
        f"4. Polling, no webhook: one limiter at {flight['budget']:g} reads/s for both"
        + (", 0 × 429" if all(r["rejected_429"] == 0 for r in rows) else "")
    )
    ax.legend(loc="upper left", frameon=False, fontsize=9.5)
    ax.set_xlim(-0.6, len(counts) - 0.4)
    return fig


# -- 5. cost per image -----------------------------------------------------------------------


def draw_cost_per_image(data: dict[str, Any], theme: Theme) -> Any:
    """Credits per accepted image per strategy, with the plan's expected credits."""
    results = data["results"]
    labels = [r["strategy"] for r in results]
    values = [r["credits_per_accepted"] for r in results]
    text = [
        f"{r['credits_per_accepted']:.2f} credits; {r['success_rate'] * 100:.0f} % served, "
        f"{r['mean_attempts']:.2f} tasks per job"
        for r in results
    ]
    fig, ax = plt.subplots(figsize=(8, 2.9))
    _barh(ax, labels, values, list(theme.series[: len(values)]), text, theme)
    planned = [r["plan_expected_credits"] for r in results]
    ax.plot(
        planned,
        range(len(planned)),
        "|",
        color=theme.text,
        ms=22,
        mew=2,
    )
    ax.set_xlim(0, max(values) * 1.75)
    ax.set_xlabel(
        f"credits per accepted image, {data['jobs']} jobs each, with failing tasks and a judge\n"
        "(black tick: what the plan expected from the model cards' success rates)"
    )
    ax.set_title("5. What an accepted image costs, per strategy")
    return fig


# -- 6. scale --------------------------------------------------------------------------------


def draw_scale(data: dict[str, Any], theme: Theme) -> Any:
    """Memory per waiting job against a bare asyncio task; journal jobs per second."""
    memory, journal = data["memory"], data["journal"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.9), width_ratios=(3, 2))
    labels = ["Router.generate job", "bare asyncio task"]
    values = [memory["bytes_per_job"] / 1000, memory["bare_task_bytes"] / 1000]
    _barh(
        left, labels, values, [theme.series[0], theme.muted], [f"{v:.1f} KB" for v in values], theme
    )
    _target_line(left, 10, "target < 10 KB", theme)
    left.set_xlim(0, 13)
    left.set_xlabel(f"KB per job, {memory['jobs']:,} in flight")
    left.set_title("6. Memory per in-flight job")
    modes = [m for m in ("FULL", "NORMAL") if m in journal]
    rates = [journal[m]["jobs_per_s"] for m in modes]
    _barh(
        right,
        [f"synchronous={m}" for m in modes],
        rates,
        [theme.series[1], theme.muted],
        [f"{r:,.0f}" for r in rates],
        theme,
    )
    right.set_xlim(0, max(rates) * 1.35)
    right.set_xlabel("journaled jobs per second (5 commits each)")
    right.set_title("Journal throughput")
    fig.tight_layout(w_pad=3)
    return fig


# -- 7. routing ------------------------------------------------------------------------------


def draw_routing(data: dict[str, Any], theme: Theme) -> Any:
    """Planning time per built-in policy: a new request shape, and a remembered one."""
    results = data["results"]
    policies = list(results)
    fig, ax = plt.subplots(figsize=(8, 3.9))
    rows = range(len(policies))
    new = [results[p]["uncached"]["median_us"] for p in policies]
    p99 = [results[p]["uncached"]["p99_us"] for p in policies]
    seen = [results[p]["remembered"]["median_us"] for p in policies]
    ax.barh(
        [r - 0.18 for r in rows],
        new,
        height=0.34,
        color=theme.series[0],
        label="new request shape (median, p99 whisker)",
    )
    ax.errorbar(
        p99,
        [r - 0.18 for r in rows],
        xerr=[[p - n for p, n in zip(p99, new, strict=True)], [0] * len(p99)],
        fmt="none",
        ecolor=theme.text,
        capsize=3,
        lw=1,
    )
    ax.barh(
        [r + 0.18 for r in rows],
        seen,
        height=0.34,
        color=theme.series[2],
        label="remembered shape (median)",
    )
    for row, (n, s) in enumerate(zip(new, seen, strict=True)):
        ax.annotate(
            f"{n:.1f} µs",
            (max(n, p99[row]), row - 0.18),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=9.5,
            color=theme.text,
        )
        ax.annotate(
            f"{s:.1f} µs",
            (s, row + 0.18),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=9.5,
            color=theme.text,
        )
    ax.set_yticks(rows, policies)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    _target_line(ax, 50, "target < 50 µs", theme)
    ax.set_xlim(0, 62)
    ax.legend(loc="lower right", fontsize=9.5)
    ax.set_xlabel(f"microseconds per plan, {data['cards']} model cards")
    ax.set_title("7. Routing decision time per built-in policy")
    return fig


# -- 8. rate limits --------------------------------------------------------------------------


def draw_ratelimit(data: dict[str, Any], theme: Theme) -> Any:
    """Achieved create rate over the allowed one, and the 429s each way met."""
    results = data["results"]
    values = [r["ratio"] for r in results]
    colours = [theme.good if r["rejected_429"] == 0 else theme.bad for r in results]
    text = [
        f"{r['ratio']:.3f}; {r['rejected_429']:,} refused (429), "
        f"{r['created']} / {r['jobs']} created"
        for r in results
    ]
    fig, ax = plt.subplots(figsize=(8, 2.7))
    _barh(ax, [r["way"] for r in results], values, colours, text, theme, clear=0.9)
    _target_line(ax, 0.9, "target ≥ 0.9 with no 429", theme)
    ax.set_xlim(0, 1.75)
    ax.set_xlabel(
        f"achieved / allowed create rate ({data['limit']} creates per {data['window']:g} s)"
    )
    ax.set_title("8. Create-rate saturation")
    return fig


FIGURES = (
    ("bench-import-time", lambda: load("import_time"), draw_import_time),
    ("bench-overhead", lambda: load("overhead"), draw_overhead),
    ("bench-polling", polling_data, draw_polling),
    ("bench-read-scheduler", lambda: load("detect_latency"), draw_read_scheduler),
    ("bench-cost-per-image", lambda: load("cost_per_image"), draw_cost_per_image),
    ("bench-scale", lambda: load("scale"), draw_scale),
    ("bench-routing", lambda: load("routing"), draw_routing),
    ("bench-ratelimit", lambda: load("ratelimit"), draw_ratelimit),
)
