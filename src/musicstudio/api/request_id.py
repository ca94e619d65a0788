"""Every response carries ``x-request-id`` (a client's well-formed one is kept)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicstudio.logs import request_id_var

HEADER = b"x-request-id"
_ACCEPTABLE = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def request_id_of(scope: Scope) -> str:
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else "unknown"


class RequestIdMiddleware:
    """Pure ASGI (no per-request task): cheap on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == HEADER), None)
        if incoming is not None and _ACCEPTABLE.fullmatch(incoming):
            request_id = incoming.decode()
        else:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        raw = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                headers.append((HEADER, raw))
                message["headers"] = headers
            await send(message)

        token = request_id_var.set(request_id)  # log records of this request carry it
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
