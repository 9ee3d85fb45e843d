"""Reliability report: the attack and fault tests record what they tried; this writes the table.

Two roles:

* a pytest plugin (loaded by ``tests/conftest.py``): the ``reliability`` fixture, whose
  ``record(area, what, tried=..., outcome=..., lost=...)`` notes one attack or fault a test tried,
  and a session hook that writes the records as JSON lines to ``$KIEROUTER_RELIABILITY_REPORT``
  (nothing is written when it is unset);
* a script that runs the reliability and security tests with that variable set and rewrites
  ``docs/reliability.md`` from what they recorded::

      uv run python tests/reliability_report.py

  Extra arguments go to pytest. The page is written only when every test passed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = "KIEROUTER_RELIABILITY_REPORT"
ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reliability.md"
COMMAND = "uv run python tests/reliability_report.py"
TEST_GLOBS = ("tests/test_reliability_*.py", "tests/test_security_*.py", "tests/test_money_*.py")


@dataclass
class Entry:
    """One attack or fault one test tried, how often, and what happened."""

    area: str
    what: str
    tried: int
    outcome: str
    lost: int
    test: str


ENTRIES: list[Entry] = []
#: rows of the money soak's own table (tests/test_money_soak.py)
MONEY: list[dict[str, Any]] = []


class Recorder:
    """Bound to one test: :meth:`record` adds an entry naming that test."""

    def __init__(self, test: str) -> None:
        self._test = test

    def record(self, area: str, what: str, *, tried: int, outcome: str, lost: int = 0) -> None:
        """Note that ``what`` (an attack or fault of ``area``) was tried ``tried`` times."""
        ENTRIES.append(Entry(area, what, int(tried), outcome, int(lost), self._test))

    def record_money(self, row: dict[str, Any]) -> None:
        """Note one run of the money soak (a row of its own table)."""
        MONEY.append({**row, "test": self._test})


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Recorder:
    """Record attack and fault counts for ``docs/reliability.md``."""
    return Recorder(request.node.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the entries as JSON lines when ``$KIEROUTER_RELIABILITY_REPORT`` names a file."""
    target = os.environ.get(ENV)
    if not target:
        return
    with open(target, "w", encoding="utf-8") as fh:
        head = {"exitstatus": int(exitstatus), "failed": int(session.testsfailed)}
        fh.write(json.dumps(head) + "\n")
        for entry in ENTRIES:
            fh.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
        for row in MONEY:
            fh.write(json.dumps({"money": row}, ensure_ascii=False) + "\n")


# -- the report ---------------------------------------------------------------------------------

AREAS = {
    "webhook": "Webhook receiver attacks",
    "parsers": "Parser fuzzing (mutated recorded bodies)",
    "input": "Bad input (hypothesis requests for every model)",
    "downloads": "Downloads",
    "secrets": "Secrets",
    "plugins": "Plugins",
    "faults": "Fault soak (emulator faults)",
    "crashes": "Crashes (SIGKILL and resume)",
}


#: What the suite found, and the fix each finding got (kept with the generator so the page and
#: the history agree; each fix was committed with the test that found it).
FOUND = (
    ("webhook receiver", "a body of deeply nested JSON raised RecursionError out of the ASGI app; "
     "NaN/Infinity were accepted", "answered 400, body refused"),
    ("provider parsing", "an infinite or NaN `createTime`/`creditsConsumed` raised OverflowError "
     "out of `parse_status`/`parse_callback`", "read as unknown"),
    ("transport", "an unreadable `Retry-After` date raised ValueError out of envelope parsing",
     "ignored"),
    ("requests", "a wrongly typed field (`count='3'`, `prompt=None`, `options` as a list) raised "
     "TypeError/AttributeError", "ValidationError naming the field"),
    ("downloads", "CGNAT (100.64/10) and `localhost.` were fetched; a redirect httpx cannot parse "
     "escaped as InvalidURL; HTML labelled `image/png` and SVG were saved",
     "refused with DownloadError"),
    ("plugins", "`sys.exit()` in a plugin ended the host; a hook returning cards instead of "
     "calling `register` registered nothing silently", "recorded on the plugin"),
    ("run loop", "a provider raising KeyError/TypeError/AttributeError mid-job crashed the job",
     "that model's attempt fails naming the plugin; the job escalates (an unreadable create "
     "answer is ambiguous, never resent)"),
    ("transport", "status-read retries slept with `time.sleep`, freezing the event loop (every "
     "job, the webhook receiver) for each backoff; the 200-job soak took minutes",
     "`async for` over stamina: the soak runs in about 25 s"),
    ("run loop (issue 13)", "a download that failed after a billed task escalated and paid again "
     "(4 tasks per job with persistent file errors, 2 for a 1.2 s blip)",
     "retried with fresh links, then paid-undelivered with its task id, URLs and credits; "
     "`kierouter fetch` and `batch resume` save it, never create again"),
    ("status reads (issue 13)", "422 `recordInfo is null` (KIE's read lag) was a validation "
     "error: the job dropped a task KIE would bill and created another",
     "read again until the task's deadline; only KIE's own final state ends a task"),
    ("timeouts (issue 13)", "a task past its deadline was dropped and recorded at 0 credits "
     "(58 of 60 rows paid twice)",
     "hedged: watched, its price held, its image kept (or serving the job); "
     "`on_timeout = \"wait\"` follows it"),
    ("budgets (issue 13)", "spend counted the cards' prices: KIE charging twice the card "
     "overshot a batch budget by 47 %",
     "held at the card's price, settled to what KIE charged; under a limit the first task of a "
     "model runs alone"),
    ("journal (issue 13)", "a kill between recording an attempt and its result counted the task "
     "twice", "one transaction"),
    ("judge (issue 13)", "`basic` judged the requested ratio, not the one the plugin snapped to: "
     "a 4:1 banner paid 4 tasks for nothing", "judges see the request as sent"),
    ("callbacks (issue 13)", "a task id named by a callback was lost when later reads failed; a "
     "leaked callback URL replayed with another job's task served the job",
     "journaled on arrival; another job's task is ignored"),
    ("downloads (money soak)", "a truncated PNG (a transfer cut short) was saved as the result",
     "the format's end mark is checked and the file fetched again"),
    ("balance probe (money soak)", "reading the balance before each first create of a burst "
     "sent a read per job", "read once after a task ends, never before a create"),
    ("hedged tasks (review)", "a hedged task that finished while the next model ran sat as an "
     "extra while a third task was paid", "it serves the job before another create"),
)  # fmt: skip


def _anchor(title: str) -> str:
    """The id MkDocs gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    words = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return "-".join(words.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_money(rows: list[dict[str, Any]]) -> list[str]:
    """The money soak's own table (``tests/test_money_soak.py``), one line per run."""
    if not rows:
        return []
    lines = [
        "## Money soak",
        "",
        "Every fault that can strike after a create was accepted, at 20 % (and all at once), over",
        "a batch (`kierouter.batch`, then `batch resume` once the faults clear) and through the",
        "library (`Router.generate`, its journal, `Router.drain`, then each undelivered task's",
        "handle). *Paid twice* counts rows with more than one billed task: each is a row hedged",
        'at a deadline (`on_timeout = "escalate"`) or whose judge rejected an image (the',
        "library runs of *all at once* use a judge that rejects one first image in ten); *other*",
        "would be a row paid twice for no reason. Credits are what the emulator charged, what the",
        "journal counts, and what the manifest (batch) or the library's results (`Result.credits`,",
        "the attempts of its errors, the extras that ended after `generate` returned) add up to.",
        "*Missing* counts billed tasks the journal or the manifest / results do not name.",
        "",
        "| Fault (20 %) | Path | Rows | Billed tasks | Paid twice: hedged / rejected / other "
        "| Credits: emulator / journal / manifest or results | Missing "
        "| Undelivered → saved later |",
        "|---|---|---:|---:|---|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {_cell(r['fault'])} | {r['path']} | {r['rows']} | {r['billed']} "
            f"| {r['hedged']} / {r['rejected']} / {r['other']} "
            f"| {r['charged']:g} / {r['journal']:g} / {r['reported']:g} | {r['missing']} "
            f"| {r['undelivered']} → {r['saved_later']} |"
        )
    tests = sorted({r["test"].split("::")[0] for r in rows})
    lines += ["", f"Tests: {', '.join(f'`{t}`' for t in tests)}.", ""]
    return lines


def render(
    head: dict[str, Any],
    entries: list[dict[str, Any]],
    money: Sequence[dict[str, Any]] = (),
) -> str:
    """The Markdown page for one run's entries (and the money soak's rows)."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        key = (e["area"], e["what"])
        row = grouped.setdefault(key, {"tried": 0, "lost": 0, "outcomes": [], "tests": set()})
        row["tried"] += e["tried"]
        row["lost"] += e["lost"]
        if e["outcome"] not in row["outcomes"]:
            row["outcomes"].append(e["outcome"])
        row["tests"].add(e["test"].split("::")[0])
    total_tried = sum(r["tried"] for r in grouped.values())
    total_lost = sum(r["lost"] for r in grouped.values())
    lines = [
        "# Reliability and security",
        "",
        "<!-- generated by tests/reliability_report.py; do not edit by hand -->",
        "",
        "What the reliability and security suite throws at kierouter, how many times, and what",
        "happened. Every row comes from a passing test run against the emulator over real HTTP",
        "(loopback): the tests count what they tried and this page is written from their counts.",
        "",
        f"Regenerate it with `{COMMAND}`.",
        "",
        f"Last run: {head.get('date', '?')}; every test passed; {head.get('tests', '?')} tests "
        f"recorded {total_tried} attacks and faults tried; {total_lost} jobs or results lost.",
        "",
    ]
    order = list(AREAS) + sorted({a for a, _ in grouped} - set(AREAS))
    areas = [(area, [(w, r) for (a, w), r in grouped.items() if a == area]) for area in order]
    areas = [(area, rows) for area, rows in areas if rows]
    lines += [
        "## Summary",
        "",
        "| Area | Kinds of attack or fault | Tried | Lost |",
        "|---|---:|---:|---:|",
    ]
    for area, rows in areas:
        title = AREAS.get(area, area)
        tried = sum(r["tried"] for _, r in rows)
        lost = sum(r["lost"] for _, r in rows)
        lines.append(f"| [{_cell(title)}](#{_anchor(title)}) | {len(rows)} | {tried} | {lost} |")
    if money:
        kinds = len({r["fault"] for r in money})
        billed = sum(r["billed"] for r in money)
        lost = sum(r["missing"] + r["undelivered"] - r["saved_later"] + r["other"] for r in money)
        lines.append(f"| [Money soak](#money-soak) (billed tasks) | {kinds} | {billed} | {lost} |")
    lines.append("")
    lines += render_money(list(money))
    for area, rows in areas:
        lines += [f"## {AREAS.get(area, area)}", ""]
        lines += ["| Fault or attack | Tried | What happened | Lost |", "|---|---:|---|---:|"]
        for what, row in rows:
            outcome = "; ".join(row["outcomes"])
            lines.append(f"| {_cell(what)} | {row['tried']} | {_cell(outcome)} | {row['lost']} |")
        tests = ", ".join(f"`{t}`" for t in sorted(set().union(*(r["tests"] for _, r in rows))))
        lines += ["", f"Tests: {tests}.", ""]
    lines += [
        "## What the suite found",
        "",
        "Each was fixed in the commit that added the test that found it.",
        "",
        "| Where | What went wrong | Now |",
        "|---|---|---|",
    ]
    lines += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in FOUND]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Run the suite with the collector on and rewrite ``docs/reliability.md``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "entries.jsonl"
        env = {**os.environ, ENV: str(out)}
        files = sorted(str(p.relative_to(ROOT)) for g in TEST_GLOBS for p in ROOT.glob(g))
        cmd = [sys.executable, "-m", "pytest", "-q", *files, *argv]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        if proc.returncode != 0 or not out.exists():
            print("tests failed; docs/reliability.md left as it was", file=sys.stderr)
            return proc.returncode or 1
        lines = out.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    records = [json.loads(line) for line in lines[1:]]
    entries = [r for r in records if "money" not in r]
    money = [r["money"] for r in records if "money" in r]
    head["tests"] = len({e["test"] for e in entries} | {m["test"] for m in money})
    head["date"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    PAGE.write_text(render(head, entries, money), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} from {len(entries)} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
