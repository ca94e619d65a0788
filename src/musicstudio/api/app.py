"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from musicstudio import __version__
from musicstudio.api.body_limit import BodyLimitMiddleware
from musicstudio.api.errors import install_error_handlers
from musicstudio.api.metrics import Metrics, MetricsMiddleware
from musicstudio.api.ratelimit import RateLimitHeadersMiddleware
from musicstudio.api.request_id import RequestIdMiddleware
from musicstudio.api.routes import (
    collections,
    engines,
    focus,
    generations,
    health,
    media,
    shares,
    tracks,
)
from musicstudio.config import Settings, get_settings
from musicstudio.services.context import ServiceContext, build_context


def create_app(settings: Settings | None = None, ctx: ServiceContext | None = None) -> FastAPI:
    """The API; builds its ServiceContext from ``settings`` unless one is given."""
    context = ctx or build_context(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await context.close()

    app = FastAPI(
        title="musicstudio",
        version=__version__,
        description="Self-hostable music generation speaking the Music Studio API.",
        lifespan=lifespan,
        # Metrics are ours (Prometheus, api/metrics.py); FastAPI's OpenTelemetry hooks would
        # only cost each request a check for providers nobody configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = context
    app.state.metrics = Metrics()
    # Added innermost first: metrics, request id, rate-limit headers, body limit, routes.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=context.settings.max_body_bytes)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    # ``shares`` first: its public /v1/music/shared/… paths must not be taken for an org.
    for module in (health, shares, engines, generations, tracks, collections, focus, media):
        app.include_router(module.router)
    # Hot endpoints, matched before the declared FastAPI routes (``api/hot.py``).
    app.router.routes[:0] = generations.HOT_ROUTES
    return app
