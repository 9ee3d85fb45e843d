"""Answers spoiled on purpose: the faults that damage a response the emulator did produce.

The request was processed (a create made its task, a result file was rendered and counted); only
what reaches the client is wrong. Refusals and dropped connections are decided in ``_app``.
"""

from __future__ import annotations

import asyncio

from ._faults import Fault
from ._http import Response

__all__ = ["spoil"]

#: What a proxy or CDN in front of a host sends when something behind it broke.
_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>502 Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>\n"
)
_TEXT = b"upstream connect error or disconnect/reset before headers. reset reason: overflow\n"


def _half(body: bytes) -> bytes:
    return body[: max(1, len(body) // 2)]


async def spoil(fault: Fault, response: Response) -> Response:
    """``response`` as the fault ``fault`` delivers it (unchanged for other kinds)."""
    kind = fault.kind
    if kind == "slow_response":
        await asyncio.sleep(fault.seconds)
        return response
    if kind == "malformed_body":
        return Response(200, _half(response.body) or b"{", "application/json")
    if kind == "truncated_body":
        return Response(response.status, _half(response.body), response.content_type)
    if kind == "wrong_content_type":
        return Response(200, _HTML_PAGE, "text/html; charset=utf-8")
    if kind == "mislabeled_body":
        return Response(200, _TEXT, response.content_type)
    return response
