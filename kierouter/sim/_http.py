"""Request and response values the emulator's handlers use, and KIE's envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from ._validation import Rejection

__all__ = ["Request", "Response", "dumps", "envelope"]


def dumps(value: Any) -> str:
    """Compact JSON as KIE writes it (no spaces, UTF-8 kept as is)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Request:
    """One HTTP request. Strictly private."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (first value of each)."""
        return {k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}

    def json(self) -> Any:
        """The body as JSON; a 400 :class:`Rejection` when it is not."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise Rejection(400, "Invalid JSON in request body") from None

    @property
    def bearer(self) -> str | None:
        """The API key from ``Authorization: Bearer``."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class Response:
    """One HTTP answer. Strictly private."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def envelope(code: int, msg: str, data: Any = None, *, status: int = 200, **extra: Any) -> Response:
    """KIE's ``{"code", "msg", "data"}`` body (HTTP 200 unless ``status`` says otherwise)."""
    body: dict[str, Any] = dict(extra)
    body.update({"code": code, "msg": msg, "data": data})
    return Response(status=status, body=dumps(body).encode())
