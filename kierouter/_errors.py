"""Every error kierouter raises, in one tree.

::

    KieRouterError
    ├── ConfigurationError          bad settings: missing key, unknown policy, bad TOML key
    ├── ValidationError             a request a model cannot run; raised before any billed call
    ├── PluginError                 a plugin failed to load, raised in a hook, or registered twice
    ├── KieError                    KIE answered with an error code (HTTP status or body ``code``)
    │   ├── AuthError               401 missing or invalid key; 433 sub-key limit (KeyLimitError)
    │   │   └── KeyLimitError       433
    │   ├── InsufficientCreditsError 402
    │   ├── NotFoundError           404, ``data: null`` on a status read, "Record does not exist"
    │   ├── KieValidationError      400 / 422 / 451: KIE refused the request's content
    │   │   └── ContentPolicyError  400 from a generation: prompt or image flagged
    │   ├── RateLimitedError        429, not queued; carries ``retry_after``
    │   ├── MaintenanceError        455
    │   ├── ServerError             500 / 550 / 408 and other 5xx
    │   ├── GenerationFailedError   501, or a task that ended in ``fail``
    │   ├── FeatureDisabledError    505
    │   └── EndpointGoneError       the endpoint no longer exists (e.g. Midjourney)
    ├── TransportError              the connection failed or the answer was not KIE's envelope
    │   ├── MalformedResponseError  a status or callback body without its family's shape
    │   └── BlockedClientError      Cloudflare refused the client (HTTP 403 "error code: 1010")
    ├── AmbiguousSubmissionError    a create may or may not have reached KIE: never resubmitted
    ├── TaskTimeoutError            a task did not finish within its deadline
    ├── BudgetExhaustedError        the job's attempts, credits or deadline ran out; lists attempts
    ├── BudgetReachedError          the router's (or batch's) spend limit has no room for a create
    ├── JobFailedError              every rung of the ladder failed; lists attempts
    ├── PaidUndeliveredError        KIE made (and billed) the image, but it could not be saved
    ├── DownloadError               a result could not be fetched safely
    └── UploadError                 a local input image could not be uploaded (nothing created)

Messages say what happened and what to do. None of them ever contains the API key or the
webhook HMAC key: :func:`redact` scrubs registered secrets from every message as it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._results import Attempt, Result

__all__ = [
    "AmbiguousSubmissionError",
    "AuthError",
    "BlockedClientError",
    "BudgetExhaustedError",
    "BudgetReachedError",
    "ConfigurationError",
    "ContentPolicyError",
    "DownloadError",
    "EndpointGoneError",
    "FeatureDisabledError",
    "GenerationFailedError",
    "InsufficientCreditsError",
    "JobFailedError",
    "KeyLimitError",
    "KieError",
    "KieRouterError",
    "KieValidationError",
    "MaintenanceError",
    "MalformedResponseError",
    "NotFoundError",
    "PaidUndeliveredError",
    "PluginError",
    "RateLimitedError",
    "ServerError",
    "TaskTimeoutError",
    "TransportError",
    "UploadError",
    "ValidationError",
    "error_for_code",
    "redact",
    "register_secret",
]

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that no kierouter message can ever contain it.

    Keys shorter than 6 characters are not registered: scrubbing them would mangle ordinary text.
    """
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class KieRouterError(Exception):
    """Base class of every error kierouter raises."""

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigurationError(KieRouterError):
    """Settings are missing or wrong (no API key, unknown policy, unknown TOML key, ...)."""


class ValidationError(KieRouterError, ValueError):
    """A request that a model cannot run. Raised before any billed call.

    ``field`` names the offending field (``"aspect_ratio"``, ``"options.steps"``, ...),
    ``allowed`` lists what would have been accepted when that is a finite set.
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        allowed: Iterable[object] | None = None,
        model: str | None = None,
    ) -> None:
        self.field = field
        self.model = model
        self.allowed: tuple[object, ...] | None = tuple(allowed) if allowed is not None else None
        where = f"{model}: " if model else ""
        text = f"{where}{field}: {message}"
        if self.allowed is not None:
            text += f" (allowed: {', '.join(str(a) for a in self.allowed)})"
        super().__init__(text)


class PluginError(KieRouterError):
    """A plugin failed to import, raised in a hook, or registered something twice."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class KieError(KieRouterError):
    """KIE answered with an error code, either as the HTTP status or inside an HTTP 200 body."""

    #: What a caller should do, appended to the message.
    advice = ""
    #: Whether repeating the same call later may succeed.
    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        task_id: str | None = None,
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.task_id = task_id
        message = message.rstrip().rstrip(".")  # KIE's msg often ends in "."; ours adds its own
        text = f"KIE error {code}: {message}" if code is not None else f"KIE error: {message}"
        if task_id:
            text += f" (task {task_id})"
        if self.advice:
            text += f". {self.advice}"
        super().__init__(text)


class AuthError(KieError):
    """401: the API key is missing or invalid."""

    advice = "Check KIE_API_KEY (kie.ai → API Keys)"


class KeyLimitError(AuthError):
    """433: this sub-key went over its hourly, daily or total cap."""

    advice = "Raise the key's cap on kie.ai or use another key"


class InsufficientCreditsError(KieError):
    """402: the account has too few credits for this task."""

    advice = "Top up credits on kie.ai; nothing more will be created until then"


class NotFoundError(KieError):
    """404 or ``data: null``: no such task, record or endpoint."""


class KieValidationError(KieError):
    """400 / 422 / 451: KIE refused the request's content."""

    advice = "Fix the request; repeating it unchanged will fail again"


class ContentPolicyError(KieValidationError):
    """The prompt or an input image was flagged by KIE's content checks."""

    advice = "Change the prompt or image; other models may accept it"


class RateLimitedError(KieError):
    """429: over KIE's rate limit. The request was rejected, not queued."""

    transient = True
    advice = "Wait for the rate window (20 creates / 10 s per account) and try again"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class MaintenanceError(KieError):
    """455: KIE is under maintenance."""

    transient = True
    advice = "Try again in a few minutes"


class ServerError(KieError):
    """500 / 550 / 408 or another 5xx from KIE."""

    transient = True
    advice = "Transient; retried with backoff"


class GenerationFailedError(KieError):
    """501, or a task that ended in ``fail`` / a failed ``successFlag``."""

    advice = "Another model may succeed"


class FeatureDisabledError(KieError):
    """505: the feature is disabled for this account or model."""


class EndpointGoneError(NotFoundError):
    """The family's endpoint no longer answers (KIE removed it)."""


class TransportError(KieRouterError):
    """The connection failed, or the answer was not KIE's ``{code, msg, data}`` envelope."""

    def __init__(self, message: str, *, sent: bool = False) -> None:
        #: True when the request may have reached KIE.
        self.sent = sent
        super().__init__(message)


class MalformedResponseError(TransportError):
    """A status or callback body that does not have its family's shape."""


class BlockedClientError(TransportError):
    """Cloudflare in front of KIE refused this client (HTTP 403 ``error code: 1010``).

    It is not KIE refusing the key or the request: Cloudflare blocks clients by their signature
    (no or an unusual ``User-Agent``, a flagged network). Nothing reached KIE, so nothing was
    billed; repeating the same call from the same client fails the same way.
    """

    advice = (
        "Send an explicit User-Agent (KieClient(user_agent=...); kierouter sends its own by "
        "default) and check the network or proxy between you and api.kie.ai"
    )

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}. {self.advice}", sent=False)


class AmbiguousSubmissionError(KieRouterError):
    """A create request was sent but no answer came back: the task may exist and be billed.

    kierouter never resubmits such a request on its own. Reconcile it by the job key carried in
    the callback URL, or by a status read once the task id is known.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        job_key: str | None = None,
        attempts: Sequence[Attempt] = (),
    ):
        self.model = model
        self.job_key = job_key
        #: The job's attempt trail when the router gave up waiting for the task to surface.
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        super().__init__(message)


class TaskTimeoutError(KieRouterError):
    """A task did not reach a final state within its deadline."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        self.task_id = task_id
        super().__init__(message)


def _attempt_lines(attempts: Sequence[Attempt]) -> str:
    """One clause per outcome and reason, naming every model that ended that way, in order:
    a dead host gives "a, b, c: failed (connection refused)", not the reason three times."""
    if not attempts:
        return "no attempts were made"
    groups: dict[tuple[str, str], list[str]] = {}
    for a in attempts:
        models = groups.setdefault((str(a.outcome), a.reason or ""), [])
        if a.model not in models:
            models.append(a.model)
    return "; ".join(
        f"{', '.join(models)}: {outcome}" + (f" ({reason})" if reason else "")
        for (outcome, reason), models in groups.items()
    )


class BudgetExhaustedError(KieRouterError):
    """The job's shared budget (attempts, credits or deadline) ran out before an accepted image."""

    def __init__(self, what: str, attempts: Sequence[Attempt] = ()) -> None:
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        super().__init__(f"budget exhausted: {what}. Attempts: {_attempt_lines(self.attempts)}")


class BudgetReachedError(KieRouterError):
    """The spend limit shared by a router's jobs (``Router(budget=...)``, a batch's
    ``--budget``) has no room left for the next create, counting credits already charged and
    the prices held for tasks still running. No task is created; ``attempts`` lists what the
    job had tried before."""

    def __init__(self, spent: float, budget: float, attempts: Sequence[Attempt] = ()) -> None:
        self.spent = spent
        self.budget = budget
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        super().__init__(
            f"the budget of {budget:g} credits is reached ({spent:g} spent or held for running "
            "tasks); no further task is created. Raise the budget (a batch: resume with a "
            "larger --budget) to go on"
        )


class JobFailedError(KieRouterError):
    """Every model the plan allowed was tried (or skipped) without an accepted image."""

    def __init__(self, what: str, attempts: Sequence[Attempt] = ()) -> None:
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        super().__init__(f"{what}. Attempts: {_attempt_lines(self.attempts)}")


class PaidUndeliveredError(KieRouterError):
    """KIE finished (and billed) the job's task, but its images could not be saved.

    Nothing is regenerated: ``result`` keeps the served model, the task id, every result URL, the
    credits charged and the reason, so the images can be fetched again (``kierouter fetch``)
    while KIE's links last. The CLI exits with code 6.
    """

    def __init__(self, message: str, *, result: Result) -> None:
        #: The paid result: ``served_model``, ``task_ids``, ``urls``, ``credits``; no ``files``.
        self.result = result
        super().__init__(message)


class DownloadError(KieRouterError):
    """A result could not be downloaded safely (scheme, redirect target, size, type, expiry)
    or saved (a full or read-only disk).

    ``expired`` is set when the link is no longer served (even after a re-mint);
    ``permanent`` when trying again cannot help (a refused address or scheme, a file over the
    size cap).
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        expired: bool = False,
        permanent: bool = False,
    ) -> None:
        self.url = url
        self.expired = expired
        self.permanent = permanent
        super().__init__(message)


class UploadError(KieRouterError):
    """A local input image could not be uploaded to KIE, after retries; its job created nothing.

    ``field`` is the request field (``images[0]``, ``mask``), ``file`` the path (or
    ``<N bytes>``), ``cause`` the last error (a :class:`TransportError` or :class:`KieError`).
    """

    def __init__(self, field: str, file: str, cause: KieRouterError) -> None:
        self.field = field
        self.file = file
        self.cause = cause
        super().__init__(
            f"{field}: {file} could not be uploaded to KIE ({cause}); no task was created. "
            "Try again later, or upload it yourself and pass its URL"
        )


_BY_CODE: dict[int, type[KieError]] = {
    400: KieValidationError,
    401: AuthError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    408: ServerError,
    422: KieValidationError,
    429: RateLimitedError,
    433: KeyLimitError,
    451: KieValidationError,
    455: MaintenanceError,
    500: ServerError,
    501: GenerationFailedError,
    505: FeatureDisabledError,
    550: ServerError,
}


def error_for_code(
    code: int,
    message: str,
    *,
    http_status: int | None = None,
    task_id: str | None = None,
    retry_after: float | None = None,
) -> KieError:
    """Build the error class that KIE's ``code`` stands for (see KIE-API.md §3.3)."""
    if message in ("Record does not exist", "record is null") and code == 422:
        return NotFoundError(message, code=code, http_status=http_status, task_id=task_id)
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else KieValidationError if code >= 400 else KieError
    if cls is RateLimitedError:
        return RateLimitedError(
            message, retry_after=retry_after, code=code, http_status=http_status, task_id=task_id
        )
    return cls(message, code=code, http_status=http_status, task_id=task_id)
