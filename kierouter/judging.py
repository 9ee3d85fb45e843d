"""Judges: look at a finished result and accept it or send the job up the ladder.

A judge is any callable taking a :class:`JudgeContext` and returning a :class:`Verdict` (or an
awaitable of one). Register judges from a plugin with ``kierouter_register_judges`` or pass one
as ``judge=`` to the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from ._models import ImageFile, ImageRequest, TaskStatus

__all__ = ["Judge", "JudgeContext", "Verdict"]


class Verdict(msgspec.Struct, frozen=True):
    """A judge's answer. A rejection escalates the job to the next rung, with ``reason``."""

    accepted: bool
    reason: str = ""


class JudgeContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a judge sees: the request, the model that served it, its status and downloaded files."""

    request: ImageRequest
    model: str
    status: TaskStatus
    files: tuple[ImageFile, ...]


Judge = Callable[[JudgeContext], "Verdict | Awaitable[Verdict]"]
