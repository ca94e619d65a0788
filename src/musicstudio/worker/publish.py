"""Publishing a render: upload its objects, then complete the job in one compare-and-set.

A completion whose answer is lost (the database went away around the commit) is settled by
reading the job back: the objects are deleted only once it is certain no job points at them,
so a succeeded job never loses its audio; at worst an attempt's objects are left behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from musicstudio import ids, queue
from musicstudio.clock import utcnow
from musicstudio.engines.base import RenderResult, finish_stems
from musicstudio.queue import Lease, Outcome
from musicstudio.services.context import ServiceContext
from musicstudio.store.jobs import get_job
from musicstudio.store.tracks import attach_stems
from musicstudio.worker.metrics import WorkerMetrics
from musicstudio.worker.upload import StoredRender, delete_objects, upload_render, upload_stems

log = logging.getLogger("musicstudio.worker")

SETTLE_RETRY_SECONDS = 1.0


class CompletionUnknown(Exception):
    """The database never answered whether the completion committed (objects kept)."""


async def publish_render(
    ctx: ServiceContext,
    lease: Lease,
    result: RenderResult,
    instrumental: bool,
    metrics: WorkerMetrics,
) -> str | None:
    """Upload and complete the job: the new track's id, or None if the attempt lost its job
    (cancelled or taken over). Upload failures raise (``StorageError`` for storage) with
    nothing of the attempt left in storage."""
    track_id = ids.new_id(ids.TRACK)
    stored = await asyncio.to_thread(upload_render, ctx.storage, lease.org_id, track_id, result)
    track = _track_values(lease, result, track_id, stored, utcnow(), instrumental)
    outcome = await _complete(ctx, lease, track)
    if outcome is None:
        raise CompletionUnknown(f"job {lease.job_id}: completion of track {track_id} unknown")
    log.info("job %s attempt %d: %s", lease.job_id, lease.attempt, outcome.value)
    metrics.attempts.labels(outcome=outcome.value).inc()
    if outcome is not Outcome.SUCCEEDED:
        # Nobody will ever point at these objects: a cancelled or stolen attempt.
        await asyncio.to_thread(delete_objects, ctx.storage, stored.keys)
        return None
    return track_id


async def _complete(ctx: ServiceContext, lease: Lease, track: dict[str, Any]) -> Outcome | None:
    """``complete_job``, settled through database hiccups: None if it stayed unknown for a
    whole lease (the lease then expires and the job is rescued; the objects stay)."""
    try:
        return await queue.complete_job(ctx.db, lease, utcnow(), track)
    except Exception:
        log.warning("job %s: completion unanswered; settling it", lease.job_id, exc_info=True)
    deadline = time.monotonic() + ctx.settings.lease_seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_RETRY_SECONDS)
        try:
            async with ctx.db.read() as conn:
                job = await get_job(conn, lease.org_id, lease.user_id, lease.job_id)
            if job is not None and job["result_track_id"] == track["id"]:
                return Outcome.SUCCEEDED  # the first completion did commit
            # It did not: the compare-and-set decides again (lost if the lease moved on).
            return await queue.complete_job(ctx.db, lease, utcnow(), track)
        except Exception:
            log.debug("job %s: still settling", lease.job_id, exc_info=True)
    return None


async def store_stems(
    ctx: ServiceContext, lease: Lease, track_id: str, result: RenderResult
) -> None:
    """Write, upload and attach stems the engine deferred. A failure here costs the track its
    stems only: the job has succeeded and the master is published."""
    if result.deferred_stems is None:
        return
    started = time.monotonic()
    try:
        files = await asyncio.to_thread(finish_stems, result)
        stored = await asyncio.to_thread(upload_stems, ctx.storage, lease.org_id, track_id, files)
    except Exception:
        log.exception("job %s: stems could not be written or stored", lease.job_id)
        return
    try:
        async with ctx.db.write() as conn:
            attached = await attach_stems(conn, track_id, stored.stems)
    except Exception:
        log.exception("job %s: stems could not be recorded", lease.job_id)
        attached = False
    if not attached:
        log.warning("job %s: track %s is gone; its stems are removed", lease.job_id, track_id)
        await asyncio.to_thread(delete_objects, ctx.storage, stored.keys)
        return
    log.info(
        "job %s: %d stems stored in %.2f s",
        lease.job_id,
        len(stored.stems),
        time.monotonic() - started,
    )


def _track_values(
    lease: Lease,
    result: RenderResult,
    track_id: str,
    stored: StoredRender,
    now: datetime,
    instrumental: bool,
) -> dict[str, Any]:
    return {
        "id": track_id,
        "org_id": lease.org_id,
        "user_id": lease.user_id,
        "job_id": lease.job_id,
        "title": result.title[:200],
        "engine": lease.engine,
        "mode": lease.mode,
        "instrumental": instrumental,
        "measured_duration_seconds": result.measured_duration_seconds,
        "mime_type": result.mime_type,
        "storage_key": stored.master_key,
        "size_bytes": stored.size_bytes,
        "stems": stored.stems or None,
        "midi_key": stored.midi_key,
        "licence_class": result.licence.licence_class,
        "licence_version": result.licence.licence_version,
        "commercial_use": result.licence.commercial_use,
        "requires_attribution": result.licence.requires_attribution,
        "recipe": result.recipe,
        "created_at": now,
    }
