"""Operational endpoints: liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from musicstudio.api.context import Context
from musicstudio.errors import ServiceUnavailable

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
    if not ctx.storage.root.is_dir():
        raise ServiceUnavailable("The storage is not reachable.")
    return {"status": "ready", "database": "ok", "storage": "ok"}
