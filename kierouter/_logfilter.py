"""A logging filter that keeps callback tokens, signatures and keys out of log lines.

uvicorn's access log prints each request's path *with* its query string, and httpx logs each
request's URL: for a KIE callback that is ``/kie/callback/{job}?token=...``. The filter rewrites
such values to ``[redacted]`` before any handler formats the record. kierouter installs it on
``uvicorn.access``, ``uvicorn.error`` and ``httpx`` whenever it runs a server itself; an
application that mounts the receiver in its own uvicorn adds it the same way (docs/webhooks.md).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ._errors import redact

__all__ = ["RedactingFilter", "install", "scrub"]

_REDACTED = "[redacted]"
# query parameters whose values are credentials: callback tokens, signatures, keys
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:token|signature|sig|key|api_?key|secret|access_token|hmac)=)[^&;\s\"'#]*"
)
# header values that are credentials, as a header dump or a repr of headers shows them
_SECRET_HEADER = re.compile(
    r"(?i)(x-webhook-signature|authorization)(['\"]?\s*[:=,]\s*['\"]?(?:bearer\s+)?)[^'\"\s,)]+"
)
_INSTALLED_ON = ("uvicorn.access", "uvicorn.error", "httpx")


def scrub(text: str) -> str:
    """``text`` with credential query values, signature headers and known secrets redacted."""
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + _REDACTED, text)
    text = _SECRET_HEADER.sub(lambda m: m.group(1) + m.group(2) + _REDACTED, text)
    return redact(text)


def _scrub_arg(value: Any) -> Any:
    if isinstance(value, int | float | bool) or value is None:
        return value  # keep numbers numbers: the format may say %d
    text = str(value)
    clean = scrub(text)
    return value if clean == text else clean


class RedactingFilter(logging.Filter):
    """A :class:`logging.Filter` that redacts callback tokens, signatures and keys in records.

    Query values named ``token``, ``signature``, ``key`` (and the like), ``X-Webhook-Signature``
    and ``Authorization`` values, and every secret kierouter knows (API key, HMAC key, token
    secret) become ``[redacted]``. It never drops a record. Add it to the loggers of the server
    your receiver is mounted in, e.g. ``logging.getLogger("uvicorn.access").addFilter(
    RedactingFilter())``; kierouter does so itself for the servers it runs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``'s message and arguments in place; always keep the record."""
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_scrub_arg(a) for a in args)
        elif isinstance(args, dict):
            record.args = {k: _scrub_arg(v) for k, v in args.items()}
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Put the redacting filter on uvicorn's and httpx's loggers (once; idempotent)."""
    for name in _INSTALLED_ON:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(_FILTER)
