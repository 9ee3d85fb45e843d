"""The canonical data model: requests, model cards, normalised task status, attempts, results.

Everything here is a frozen :class:`msgspec.Struct`, cheap to build, compare and encode to JSON.
Nothing here touches the network, so model cards, policies and ``explain`` stay import-light.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

import msgspec

from ._errors import ValidationError
from ._inputs import (
    DEFAULT_MAX_IMAGE_BYTES,
    ImageInput,
    data_size,
    normalize_input,
    syntax_problem,
)
from ._results import Adaptation, Attempt, ImageFile, Outcome, Result

__all__ = [
    "ASPECT_RATIOS",
    "RESOLUTIONS",
    "TASK_KINDS",
    "Adaptation",
    "Attempt",
    "Capabilities",
    "Event",
    "ImageFile",
    "ImageRequest",
    "ModelCard",
    "Outcome",
    "Pricing",
    "Resolution",
    "Result",
    "TaskKind",
    "TaskState",
    "TaskStatus",
]

TaskKind = Literal["generate", "edit", "remove-background", "upscale"]
TASK_KINDS: tuple[TaskKind, ...] = ("generate", "edit", "remove-background", "upscale")

Resolution = Literal["1K", "2K", "4K"]
RESOLUTIONS: tuple[Resolution, ...] = ("1K", "2K", "4K")

#: Every aspect ratio any shipped model understands, widest set first; ``auto`` lets the model pick.
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9", "9:21", "5:4", "4:5",
    "2:1", "1:2", "6:5", "5:6", "3:1", "1:3", "4:1", "1:4", "8:1", "1:8", "auto",
)  # fmt: skip

TaskState = Literal["pending", "success", "failed"]


def _ratio_value(ratio: str) -> float | None:
    left, sep, right = ratio.partition(":")
    if not sep:
        return None
    try:
        w, h = float(left), float(right)
    except ValueError:
        return None
    return w / h if w > 0 and h > 0 else None


def _a(kind: str) -> str:
    """``"a generate"`` / ``"an edit"``, for error messages."""
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _check_types(request: ImageRequest) -> None:
    """Struct constructors do not check types: a wrongly typed field is a ValidationError."""
    try:
        msgspec.convert(msgspec.structs.asdict(request), type(request))
    except msgspec.ValidationError as exc:
        text = str(exc)
        _, _, where = text.rpartition(" - at `$.")
        field = where.rstrip("`") or "request"
        allowed = {"task": TASK_KINDS, "resolution": RESOLUTIONS}.get(field)
        raise ValidationError(field, text.partition(" - at ")[0], allowed=allowed) from None


if TYPE_CHECKING:
    # Type checkers see ``images`` and ``mask`` as descriptors: they accept paths and bytes
    # when a request is built, and always read back as the strings the request stores.

    class _Images:
        @overload
        def __get__(self, obj: None, owner: Any) -> _Images: ...
        @overload
        def __get__(self, obj: object, owner: Any) -> tuple[str, ...]: ...
        def __get__(self, obj: object, owner: Any) -> Any: ...
        def __set__(self, obj: object, value: ImageInput | Iterable[ImageInput]) -> None: ...

    class _Mask:
        @overload
        def __get__(self, obj: None, owner: Any) -> _Mask: ...
        @overload
        def __get__(self, obj: object, owner: Any) -> str | None: ...
        def __get__(self, obj: object, owner: Any) -> Any: ...
        def __set__(self, obj: object, value: ImageInput | None) -> None: ...


def _clip_data(value: str) -> str:
    if value[:5].lower() != "data:" or len(value) <= 80:
        return value
    return f"{value.partition(',')[0]},…({data_size(value)} bytes)"


class ImageRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One image job, described independently of any model.

    ``task`` is inferred when left out: reference ``images`` make it an ``edit``, otherwise
    ``generate``. ``options`` carries model-specific fields, keyed by model id or family name
    (``{"midjourney": {"version": "niji6"}}``); each plugin validates the ones it knows.

    ``images`` (one or several) and ``mask`` take http(s) URLs, local file paths (``str`` or
    ``os.PathLike``) and ``bytes``. They are stored as strings so that a request encodes to
    JSON: a path as ``os.fspath`` gives it, bytes as a ``data:<type>;base64,...`` URI. A
    :class:`~kierouter.Router` checks local files before anything is paid and uploads them to
    KIE after planning (see :class:`~kierouter.Uploader`).
    """

    prompt: str = ""
    task: TaskKind | None = None
    aspect_ratio: str | None = None
    resolution: Resolution | None = None
    count: int = 1
    seed: int | None = None
    if TYPE_CHECKING:
        images: _Images = ()  # type: ignore[assignment]
        mask: _Mask = None  # type: ignore[assignment]
    else:
        images: tuple[str, ...] = ()
        mask: str | None = None
    negative_prompt: str | None = None
    language: str | None = None
    options: dict[str, dict[str, Any]] = {}

    def __post_init__(self) -> None:
        images: Any = self.images
        if type(images) is not tuple or not all(type(i) is str for i in images):
            if isinstance(images, str | bytes | bytearray | memoryview) or hasattr(
                images, "__fspath__"
            ):
                images = (images,)  # one image given on its own
            elif not isinstance(images, Iterable):
                raise ValidationError("images", f"{type(images).__name__} is not a list of images")
            images = tuple(normalize_input(v, f"images[{n}]") for n, v in enumerate(images))
            msgspec.structs.force_setattr(self, "images", images)
        mask: Any = self.mask
        if mask is not None and type(mask) is not str:
            msgspec.structs.force_setattr(self, "mask", normalize_input(mask, "mask"))

    def __repr__(self) -> str:
        # bytes given as images live in data URIs: show their size, not megabytes of base64
        fields = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name == "images":
                value = tuple(_clip_data(v) for v in value)
            elif name == "mask" and value is not None:
                value = _clip_data(value)
            fields.append(f"{name}={value!r}")
        return f"ImageRequest({', '.join(fields)})"

    @property
    def kind(self) -> TaskKind:
        """The task kind, inferred from ``images`` when ``task`` is not given."""
        if self.task is not None:
            return self.task
        return "edit" if self.images else "generate"

    def validate(self) -> ImageRequest:
        """Check model-independent rules; raise :class:`ValidationError` naming the field."""
        _check_types(self)
        kind = self.kind
        if kind in ("generate", "edit") and not self.prompt.strip():
            raise ValidationError("prompt", f"{_a(kind)} request needs a non-empty prompt")
        if kind in ("edit", "remove-background", "upscale") and not self.images:
            raise ValidationError(
                "images", f"{_a(kind)} request needs at least one image (a URL, a file or bytes)"
            )
        if kind in ("remove-background", "upscale") and len(self.images) != 1:
            raise ValidationError("images", f"{kind} takes exactly one image")
        for i, image in enumerate(self.images):
            problem = syntax_problem(image)
            if problem is not None:
                raise ValidationError(f"images[{i}]", problem)
        if self.mask is not None:
            problem = syntax_problem(self.mask)
            if problem is not None:
                raise ValidationError("mask", problem)
        ratio = self.aspect_ratio
        if ratio is not None and ratio != "auto" and _ratio_value(ratio) is None:
            raise ValidationError(
                "aspect_ratio", f"{self.aspect_ratio!r} is not W:H", allowed=ASPECT_RATIOS
            )
        if not 1 <= self.count <= 16:
            raise ValidationError("count", f"{self.count} is out of range 1..16")
        if self.seed is not None and not 0 <= self.seed <= 2**31 - 1:
            raise ValidationError("seed", f"{self.seed} is out of range 0..2147483647")
        for key, value in self.options.items():
            if not isinstance(value, dict):
                raise ValidationError(
                    f"options.{key}", "must be a table of model fields keyed by model id or family"
                )
        return self

    @property
    def ratio(self) -> float | None:
        """The aspect ratio as width/height, or ``None`` when unset or ``auto``."""
        return _ratio_value(self.aspect_ratio) if self.aspect_ratio else None


class Pricing(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Credits charged for one task, as data so that users can override it from TOML.

    ``credits`` is the price of one image at the default tier. ``by_resolution`` and ``by_speed``
    replace it for a given tier. ``images_per_task`` is how many images one charged task returns
    (Midjourney: 4), so a request for ``count`` images is charged ``ceil(count / images_per_task)``
    tasks when ``per_task`` is true, else ``count`` images.
    """

    credits: float
    by_resolution: dict[str, float] = {}
    by_speed: dict[str, float] = {}
    images_per_task: int = 1
    per_task: bool = False

    def credits_for(
        self, request: ImageRequest | None = None, *, speed: str | None = None
    ) -> float:
        """Credits this request is expected to cost on this model."""
        unit = self.credits
        if request is not None and request.resolution and request.resolution in self.by_resolution:
            unit = self.by_resolution[request.resolution]
        if speed and speed in self.by_speed:
            unit = self.by_speed[speed]
        count = request.count if request is not None else 1
        if self.per_task:
            tasks = -(-count // self.images_per_task)
            return unit * tasks
        return unit * count


class Capabilities(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a model accepts. The policy engine drops models whose capabilities a request exceeds."""

    aspect_ratios: tuple[str, ...] = ("1:1",)
    resolutions: tuple[str, ...] = ()
    max_images: int = 1
    max_reference_images: int = 0
    max_prompt_chars: int = 5000
    seed: bool = False
    negative_prompt: bool = False
    mask: bool = False
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    """Largest input image (reference or mask) the model takes, in bytes (KIE's docs: 10 MB for
    most edit models). A bigger local file drops the model from the plan before anything is
    sent."""


class ModelCard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the router knows about one model before calling it.

    ``quality`` is a 0–10 score; ``success_rate`` is the prior probability that KIE produces
    (and bills) an image for one attempt, which without a judge is the chance the attempt
    succeeds; ``latency_p50``/``latency_p90`` are seconds from create to done.
    ``strengths`` uses a small vocabulary: ``text``, ``chinese``, ``artistic``, ``anime``,
    ``photoreal``, ``editing``, ``4k``, ``fast``, ``budget``, ``utility``.
    ``languages`` holds ISO codes of the prompt languages the model understands, ``*`` for any.
    """

    id: str
    family: str
    task_kinds: tuple[TaskKind, ...]
    pricing: Pricing
    latency_p50: float
    latency_p90: float
    quality: float
    capabilities: Capabilities = Capabilities()
    strengths: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)
    success_rate: float = 0.95
    plugin: str = ""
    title: str = ""
    description: str = ""

    def credits_for(self, request: ImageRequest | None = None) -> float:
        """Expected credits for ``request`` on this model."""
        speed = None
        if request is not None:
            speed = (request.options.get(self.id) or request.options.get(self.family) or {}).get(
                "speed"
            )
        return self.pricing.credits_for(request, speed=speed if isinstance(speed, str) else None)

    def supports_language(self, language: str) -> bool:
        """Whether prompts in ``language`` (ISO code) are understood."""
        return "*" in self.languages or language in self.languages


class TaskStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A task's status, normalised across Market ``state`` strings and legacy ``successFlag``s."""

    task_id: str
    state: TaskState
    raw_state: str = ""
    urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_message: str | None = None
    progress: float | None = None
    credits: float | None = None
    created_ms: int | None = None
    completed_ms: int | None = None

    @property
    def done(self) -> bool:
        """True once the task is final (success or failed)."""
        return self.state != "pending"


EventKind = Literal[
    "planned", "created", "polled", "callback", "failed", "retried",
    "escalated", "judged", "downloaded", "finished", "skipped", "reconciled",
    "delivering", "undelivered", "settled", "overcharged", "hedged", "extra", "uploaded",
]  # fmt: skip
"""Every kind of :class:`Event` (``docs/concepts.md``, "Events", says when each is sent). Sinks
should ignore kinds they do not know: later versions may add some."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a job, sent to every event sink (``kierouter_register_event_sinks``)."""

    kind: EventKind
    job_key: str
    model: str | None = None
    task_id: str | None = None
    detail: str = ""
    data: dict[str, Any] = {}
    at: float = msgspec.field(default_factory=time.time)
