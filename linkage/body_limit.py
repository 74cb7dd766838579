"""A cap on request bodies, checked before anything reads them.

FastAPI reads and parses a body before the route (and so before authentication) runs: without a
cap, any caller could make the API hold and parse megabytes per request. A body must declare its
length (411 otherwise) and stay within `max_bytes` (413); the refusal goes the way of every
malformed request (authenticated, audited, counted). Pure ASGI, so requests within the cap pay
one header scan and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 16 * 1024
"""A verify body is a few hundred bytes; sixteen KiB leaves room and bounds the cost."""

Refuse = Callable[[Request, str, int], Awaitable[Response]]


class BodyLimit:
    def __init__(self, app: ASGIApp, refuse: Refuse, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.refuse = refuse
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(dict(scope["headers"]))
            if problem is not None:
                status, detail = problem
                response = await self.refuse(Request(scope), detail, status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        length = headers.get(b"content-length")
        if length is None:
            if b"transfer-encoding" in headers:
                return 411, "a request body must declare its length (Content-Length)"
            return None
        if not length.isdigit() or int(length) > self.max_bytes:
            return 413, f"the request body exceeds {self.max_bytes} bytes"
        return None
