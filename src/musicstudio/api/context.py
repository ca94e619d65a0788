"""The process's ServiceContext, reachable from routes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from musicstudio.services.context import ServiceContext


def get_context(request: Request) -> ServiceContext:
    return cast(ServiceContext, request.app.state.ctx)


def base_url(request: Request) -> str:
    """Where clients reach us: the configured public URL, else the request's own base."""
    ctx = get_context(request)
    return ctx.settings.public_url or str(request.base_url).rstrip("/")


Context = Annotated[ServiceContext, Depends(get_context)]
