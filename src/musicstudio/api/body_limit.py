"""Request bodies larger than ``max_body_bytes`` are refused with 413 before any route runs.

A declared ``Content-Length`` over the limit is refused unread; a body without one (chunked)
is read up to the limit and replayed to the route, so memory stays bounded either way.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicstudio.api.errors import error_response

_CONTENT_LENGTH = b"content-length"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == _CONTENT_LENGTH), None)
        if declared is not None:
            # The server delivers no more than the declared length: trust it when it fits.
            if declared.isdigit() and int(declared) <= self.max_body_bytes:
                await self.app(scope, receive, send)
                return
            if declared.isdigit():
                await self._refuse(scope, receive, send)
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before finishing its body; nothing to answer.
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            Request(scope),
            status=413,
            code="PAYLOAD_TOO_LARGE",
            type_="invalid_request",
            message=f"The request body is larger than {self.max_body_bytes} bytes.",
            details={"max_body_bytes": self.max_body_bytes},
            # The rest of the body is not read: the connection cannot be reused.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
