"""Judges: look at a finished result and accept it or send the job up the ladder.

A judge is any callable taking a :class:`JudgeContext` and returning a :class:`Verdict` (or an
awaitable of one). Register judges from a plugin with ``kierouter_register_judges`` or pass one
as ``judge=`` to the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from ._models import Adaptation, ImageFile, ImageRequest, TaskStatus

__all__ = ["BUILTIN_JUDGES", "BasicJudge", "Judge", "JudgeContext", "Verdict", "basic_judge"]


class Verdict(msgspec.Struct, frozen=True):
    """A judge's answer. A rejection escalates the job to the next rung, with ``reason``."""

    accepted: bool
    reason: str = ""


class JudgeContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a judge sees: the request, the model that served it, its status and downloaded files.

    ``request`` is the job's request as the user gave it; ``sent`` is that request as the
    model's plugin sent it, with its adaptations (``adaptations``) applied: the aspect ratio it
    snapped to, the resolution tier it used. Check images against ``sent``: a model asked for
    4:1 that only draws 21:9 was sent 21:9. ``sent`` is ``None`` only for a context built by
    hand; :attr:`asked` gives ``sent`` or else ``request``.
    """

    request: ImageRequest
    model: str
    status: TaskStatus
    files: tuple[ImageFile, ...]
    sent: ImageRequest | None = None
    adaptations: tuple[Adaptation, ...] = ()

    @property
    def asked(self) -> ImageRequest:
        """What the model was asked for: ``sent`` when known, else ``request``."""
        return self.sent if self.sent is not None else self.request


Judge = Callable[[JudgeContext], "Verdict | Awaitable[Verdict]"]
"""A judge: called with a `JudgeContext` once a task succeeded and its images are downloaded;
returns (or awaits) a `Verdict`. A rejection escalates the job.
"""


class BasicJudge:
    """The built-in judge: every image exists, decodes, has the aspect ratio the model was sent
    (``JudgeContext.sent``: the requested ratio as the plugin snapped it), and is not blank.

    Args:
        tolerance: accepted relative difference between the image's width/height and the
            aspect ratio sent (0.03 = 3 %). Requests without a ratio (or ``auto``) skip it.
        min_stddev: an image whose every colour channel has a standard deviation below this
            (0–255 scale) is blank.
        max_decode_pixels: PNGs up to this size are decoded in full for the blank check; larger
            ones (and JPEG/WebP, which the standard library cannot decode) are checked from
            their header and compressed size only.

    Register name: ``"basic"`` (``Router(judge="basic")``).
    """

    def __init__(
        self,
        *,
        tolerance: float = 0.03,
        min_stddev: float = 2.0,
        max_decode_pixels: int = 1_500_000,
    ) -> None:
        self.tolerance = tolerance
        self.min_stddev = min_stddev
        self.max_decode_pixels = max_decode_pixels

    def __repr__(self) -> str:
        return f"BasicJudge(tolerance={self.tolerance}, min_stddev={self.min_stddev})"

    async def __call__(self, context: JudgeContext) -> Verdict:
        import asyncio

        # Decoding a PNG in pure Python takes a while: keep it off the event loop.
        return await asyncio.to_thread(self.check, context)

    def check(self, context: JudgeContext) -> Verdict:
        """Judge synchronously (what ``__call__`` runs in a worker thread)."""
        if not context.files:
            if not context.status.urls:
                return Verdict(False, "the task returned no image")
            return Verdict(False, "no downloaded file to check")
        for number, file in enumerate(context.files, start=1):
            where = f"image {number}" if len(context.files) > 1 else "the image"
            try:
                with open(file.path, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                return Verdict(False, f"{where} is missing: {exc.strerror}")
            problem = self._problem(data, context.asked.ratio)
            if problem:
                return Verdict(False, f"{where} {problem}")
        return Verdict(True, "")

    def _problem(self, data: bytes, ratio: float | None) -> str | None:
        from ._images import ImageFormatError, UnsupportedImageError, decode_png, sniff

        if not data:
            return "is empty"
        try:
            info = sniff(data)
        except ImageFormatError as exc:
            return f"does not decode: {exc}"
        if info.width <= 0 or info.height <= 0:
            return f"has no pixels ({info.width}x{info.height})"
        if ratio is not None:
            actual = info.width / info.height
            if abs(actual / ratio - 1) > self.tolerance:
                return (
                    f"is {info.width}x{info.height} (ratio {actual:.3f}), not the {ratio:.3f} "
                    f"the model was asked for, within {self.tolerance:.0%}"
                )
        pixels = info.width * info.height
        if info.format == "png" and pixels <= self.max_decode_pixels:
            try:
                image = decode_png(data)
            except UnsupportedImageError:
                return None  # valid, but a PNG flavour we cannot decode: no pixel check
            except ImageFormatError as exc:
                return f"does not decode: {exc}"
            spread = _max_channel_stddev(image.pixels, image.channels)
            if spread < self.min_stddev:
                return f"is blank (pixel standard deviation {spread:.2f})"
            return None
        # Without decoding: a blank picture compresses to almost nothing.
        if len(data) * 2000 < pixels * 3:
            return f"is almost certainly blank ({len(data)} bytes for {info.width}x{info.height})"
        return None


def _max_channel_stddev(pixels: bytes, channels: int, samples: int = 200_000) -> float:
    colour = min(channels, 3) if channels != 2 else 1  # gray+alpha: only the gray channel
    count = len(pixels) // channels
    step = max(1, count // samples)
    best = 0.0
    for channel in range(colour):
        values = pixels[channel::channels][::step]
        n = len(values)
        if n == 0:
            continue
        mean = sum(values) / n
        variance = sum((v - mean) ** 2 for v in values) / n
        best = max(best, variance**0.5)
    return best


basic_judge = BasicJudge()
"""The built-in judge with default settings."""

BUILTIN_JUDGES: dict[str, Judge] = {"basic": basic_judge}
"""Judges available by name without any plugin."""
