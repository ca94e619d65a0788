"""Hot endpoints served as plain Starlette routes, ahead of the declared FastAPI routes.

FastAPI's per-request dependency solving and parameter validation cost about 200 µs, more
than the work behind the endpoint clients poll most (docs/benchmarks.md). A hot route does the
same steps by hand; the FastAPI route of the same path stays declared for its OpenAPI entry.
"""

from __future__ import annotations

from starlette.routing import Match, Route
from starlette.types import Scope


class HotRoute(Route):
    """A Starlette route that, like FastAPI's, puts itself in ``scope["route"]`` when it
    matches: the metrics label requests by its path template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope
