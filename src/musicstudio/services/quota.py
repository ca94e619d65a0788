"""The per-organization cap on live (queued + running) jobs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.config import Settings
from musicstudio.errors import QuotaExceeded
from musicstudio.store import jobs as store


async def admit_jobs(conn: AsyncConnection, settings: Settings, org_id: str, count: int) -> None:
    """Inside the transaction that enqueues ``count`` jobs: refuse them if they don't fit.

    The organization's enqueues are serialised first, so concurrent creates cannot both
    squeeze into the last free place.
    """
    cap = settings.max_active_jobs_per_org
    await store.lock_organization_queue(conn, org_id)
    live = await store.count_live_jobs(conn, org_id, up_to=cap)
    if live + count > cap:
        raise QuotaExceeded(
            f"Your organization already has {live} generation jobs queued or running, and may "
            f"have at most {cap} at once. Wait for some to finish, then retry.",
            details={"limit": cap, "live_jobs": live, "requested": count},
        )
