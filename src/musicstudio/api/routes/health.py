"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from musicstudio.api.context import Context
from musicstudio.api.metrics import Metrics
from musicstudio.api.openapi_responses import documented
from musicstudio.api.schemas import HealthOut, ReadinessOut
from musicstudio.clock import utcnow
from musicstudio.errors import ServiceUnavailable
from musicstudio.queue import queue_state
from musicstudio.storage.base import StorageError

log = logging.getLogger("musicstudio.api")
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, responses=documented(200, (), limit="none"))
async def healthz() -> dict[str, Any]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadinessOut, responses=documented(200, (503,), limit="none"))
async def readyz(ctx: Context) -> dict[str, Any]:
    """The database and the storage answer."""
    try:
        async with ctx.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise _unavailable("The database is not reachable.") from exc
    try:
        # A thread: S3's check is a network round trip.
        await asyncio.to_thread(ctx.storage.check)
    except StorageError as exc:
        log.warning("readiness: %s", exc)  # the reason stays in the log, not the response
        raise _unavailable("The storage is not reachable.") from exc
    return {"status": "ready", "database": "ok", "storage": "ok"}


def _unavailable(message: str) -> ServiceUnavailable:
    # Like every 503 of the API: a balancer may retry after a second.
    return ServiceUnavailable(message, headers={"Retry-After": "1"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, ctx: Context) -> Response:
    """Prometheus text format: this process's request latencies and the shared queue."""
    instruments: Metrics = request.app.state.metrics
    async with ctx.db.read() as conn:
        instruments.record_queue(await queue_state(conn, utcnow()))
    return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)
