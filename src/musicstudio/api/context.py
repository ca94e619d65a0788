"""The process's ServiceContext, reachable from routes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from musicstudio.services.context import ServiceContext


def context_of(request: Request) -> ServiceContext:
    return cast(ServiceContext, request.app.state.ctx)


async def get_context(request: Request) -> ServiceContext:
    # async on purpose: FastAPI runs plain-def dependencies in a thread pool.
    return context_of(request)


def base_url(request: Request) -> str:
    """Where clients reach us: the configured public URL, else the request's own base."""
    ctx = context_of(request)
    return ctx.settings.public_url or str(request.base_url).rstrip("/")


Context = Annotated[ServiceContext, Depends(get_context)]
