"""Error messages read as one sentence each: no doubled full stops, one clause per reason."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kierouter import (
    Attempt,
    ImageRequest,
    InsufficientCreditsError,
    JobFailedError,
    KieError,
    PaidUndeliveredError,
    Result,
)
from kierouter._history import History


def test_kie_message_ending_in_a_full_stop_gets_no_second_one() -> None:
    """KIE's msg often ends with '.'; the advice and task id follow it without '..'."""
    error = InsufficientCreditsError("Credits insufficient.", code=402, task_id="t-1")
    text = str(error)
    assert ".." not in text and ". (" not in text
    assert text.startswith("KIE error 402: Credits insufficient (task t-1). ")
    assert error.advice in text
    assert str(KieError("boom.", code=500)) == "KIE error 500: boom"


def test_attempts_sharing_a_reason_are_named_once() -> None:
    """Three models refused the same way give one clause naming all three, in order."""
    down = "connection refused"
    attempts = [
        Attempt(model="a/x", outcome="failed", reason=down),
        Attempt(model="b/y", outcome="failed", reason=down),
        Attempt(model="c/z", outcome="rejected", reason="judge: too dark"),
        Attempt(model="d/w", outcome="failed", reason=down),
    ]
    text = str(JobFailedError("every model failed", attempts))
    assert text.count(down) == 1
    assert "a/x, b/y, d/w: failed (connection refused)" in text
    assert "c/z: rejected (judge: too dark)" in text
    assert str(JobFailedError("x", [])).endswith("no attempts were made")


async def test_history_records_a_paid_but_undelivered_job(tmp_path: Path) -> None:
    """A job KIE billed whose images could not be saved is in `kierouter logs` with its task
    id and credits (it was paid), marked not ok, with the reason."""
    history = History(tmp_path / "logs.db")
    paid = Result(
        served_model="bytedance/seedream",
        attempts=(
            Attempt(model="bytedance/seedream", outcome="success", task_id="t-9", credits=3.5),
        ),
        credits=3.5,
        urls=("https://tempfile.example/a.png",),
        delivery="undelivered",
        delivery_error="disk full",
    )
    job = SimpleNamespace(policy=None, request=ImageRequest(prompt="a fox"), job_key="j-1")

    async def run() -> Result:
        raise PaidUndeliveredError("saved nothing: disk full", result=paid)

    with pytest.raises(PaidUndeliveredError):
        await history.track(job, run(), base_url="https://api.kie.ai")
    (entry,) = history.entries()
    assert (entry.job_key, entry.ok, entry.credits, entry.task_ids) == ("j-1", False, 3.5, ["t-9"])
    assert entry.served_model == "bytedance/seedream"
    assert "disk full" in (entry.error or "")
