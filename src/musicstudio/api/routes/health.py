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
from musicstudio.clock import utcnow
from musicstudio.errors import ServiceUnavailable
from musicstudio.queue import queue_state
from musicstudio.storage.base import StorageError

log = logging.getLogger("musicstudio.api")
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: Context) -> dict[str, Any]:
    """The database and the storage answer."""
    try:
        async with ctx.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable("The database is not reachable.") from exc
    try:
        # A thread: S3's check is a network round trip.
        await asyncio.to_thread(ctx.storage.check)
    except StorageError as exc:
        log.warning("readiness: %s", exc)  # the reason stays in the log, not the response
        raise ServiceUnavailable("The storage is not reachable.") from exc
    return {"status": "ready", "database": "ok", "storage": "ok"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, ctx: Context) -> Response:
    """Prometheus text format: this process's request latencies and the shared queue."""
    instruments: Metrics = request.app.state.metrics
    async with ctx.db.read() as conn:
        instruments.record_queue(await queue_state(conn, utcnow()))
    return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)
