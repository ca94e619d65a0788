"""``X-RateLimit-*`` on every authenticated response (and ``Retry-After`` on a 429).

Authentication (``api/auth.py``) takes the token and leaves its decision on the scope; this
pure ASGI middleware copies it onto the response, whatever the route answered.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from musicstudio.services.ratelimit import RateDecision

_STATE_KEY = "rate_limit"


def remember_decision(scope: Scope, decision: RateDecision) -> None:
    scope.setdefault("state", {})[_STATE_KEY] = decision


class RateLimitHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get("state", {}).get(_STATE_KEY)
                if isinstance(decision, RateDecision):
                    headers = list(message.get("headers", []))
                    present = {k.lower() for k, _ in headers}
                    for name, value in decision.headers().items():
                        raw = name.lower().encode()
                        if raw not in present:
                            headers.append((raw, value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_limits)
