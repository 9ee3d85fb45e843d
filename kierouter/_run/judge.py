"""Stage 5, judge: the user's judge looks at the delivered images and accepts or rejects them.

The judge sees the request as the plugin sent it (``JudgeContext.sent``: the snapped aspect
ratio, the resolution tier), so the built-in ``basic`` judge never rejects an image for being
what the model was asked to draw. A rejection is paid (the image was made): the job may create
another task, by the money rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kierouter.judging import JudgeContext, Verdict

from .context import maybe_await

if TYPE_CHECKING:
    from kierouter._models import ImageFile, TaskStatus
    from kierouter.judging import Judge

    from .state import JobState, TaskRun

__all__ = ["call_judge", "judge"]


async def call_judge(judge: Judge, context: JudgeContext) -> Verdict:
    """Call a judge (sync or async) and check that it returned a :class:`Verdict`."""
    verdict = await maybe_await(judge(context))
    if isinstance(verdict, bool):
        return Verdict(verdict, "" if verdict else "rejected by judge")
    if not isinstance(verdict, Verdict):
        raise TypeError(f"judge returned {type(verdict).__name__}, not a Verdict")
    return verdict


async def judge(
    state: JobState, run: TaskRun, status: TaskStatus, files: tuple[ImageFile, ...]
) -> Verdict:
    """The job's judge on one delivered result (accepted when the job has no judge)."""
    if state.judge is None:
        return Verdict(True)
    context = JudgeContext(
        request=state.request,
        model=run.model,
        status=status,
        files=files,
        sent=run.sent,
        adaptations=run.prepared.adaptations,
    )
    verdict = await call_judge(state.judge, context)
    detail = "accepted" if verdict.accepted else f"rejected: {verdict.reason}"
    state.emit("judged", model=run.model, task_id=status.task_id, detail=detail)
    return verdict
