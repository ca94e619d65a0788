"""The jobs table as a queue: claim, heartbeat, finish, release and rescue.

Every state change a worker makes is a compare-and-set on (job id, attempt,
lease owner, status running): a worker whose lease expired, or was rescued and
re-claimed by another worker, changes nothing. A claim increments ``attempt``
atomically, so each attempt belongs to exactly one worker.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import generation_jobs as jobs
from musicstudio.db.tables import tracks
from musicstudio.store.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED

MAX_RUNNING_PROGRESS = 99  # 100 means succeeded, and only a finished job says so

CRASH_MESSAGE = (
    "Rendering stopped unexpectedly several times, so the job was given up. Please try again."
)


@dataclass(frozen=True)
class Lease:
    """A claimed attempt of a job: the worker's right to change it."""

    job_id: str
    attempt: int
    owner: str
    org_id: str
    user_id: str
    engine: str
    mode: str
    request: dict[str, Any]
    max_attempts: int


@dataclass(frozen=True)
class Heartbeat:
    held: bool  # False: the lease was lost, stop working and change nothing
    cancel_requested: bool


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    LOST = "lost"


@dataclass(frozen=True)
class RescueCounts:
    requeued: int
    failed: int
    cancelled: int


def _held(lease: Lease) -> tuple[ColumnElement[bool], ...]:
    return (
        jobs.c.id == lease.job_id,
        jobs.c.attempt == lease.attempt,
        jobs.c.lease_owner == lease.owner,
        jobs.c.status == RUNNING,
    )


def _progress_at_least(value: int) -> Any:
    # Clients never see progress go down: a retried attempt reports the maximum so far.
    value = max(0, min(int(value), MAX_RUNNING_PROGRESS))
    return case((jobs.c.progress < value, value), else_=jobs.c.progress)


async def claim_next_job(
    conn: AsyncConnection, owner: str, now: datetime, lease_seconds: float
) -> Lease | None:
    """Take the oldest available queued job under a fresh lease, or None if there is none."""
    candidate = (
        select(jobs.c.id)
        .where(jobs.c.status == QUEUED, jobs.c.available_at <= now)
        .order_by(jobs.c.available_at, jobs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers instead
        .scalar_subquery()
    )
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == candidate, jobs.c.status == QUEUED)
        .values(
            status=RUNNING,
            attempt=jobs.c.attempt + 1,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=now,
            updated_at=now,
        )
        .returning(
            jobs.c.id,
            jobs.c.attempt,
            jobs.c.org_id,
            jobs.c.user_id,
            jobs.c.engine,
            jobs.c.mode,
            jobs.c.request,
            jobs.c.max_attempts,
        )
    )
    row = result.first()
    if row is None:
        return None
    return Lease(
        job_id=row.id,
        attempt=row.attempt,
        owner=owner,
        org_id=row.org_id,
        user_id=row.user_id,
        engine=row.engine,
        mode=row.mode,
        request=dict(row.request),
        max_attempts=row.max_attempts,
    )


async def heartbeat(
    conn: AsyncConnection, lease: Lease, now: datetime, lease_seconds: float, progress: int
) -> Heartbeat:
    """Extend the lease and record progress; tells whether cancellation was asked for."""
    result = await conn.execute(
        update(jobs)
        .where(*_held(lease))
        .values(
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            progress=_progress_at_least(progress),
            updated_at=now,
        )
        .returning(jobs.c.cancel_requested)
    )
    row = result.first()
    if row is None:
        return Heartbeat(held=False, cancel_requested=False)
    return Heartbeat(held=True, cancel_requested=bool(row.cancel_requested))


async def complete_job(
    conn: AsyncConnection, lease: Lease, now: datetime, track: dict[str, Any]
) -> Outcome:
    """Record success and insert its track in the caller's transaction, if the lease still holds.

    A cancellation that arrived during the last stage wins over the result.
    """
    result = await conn.execute(
        update(jobs)
        .where(*_held(lease), jobs.c.cancel_requested.is_(False))
        .values(
            status=SUCCEEDED,
            progress=100,
            result_track_id=track["id"],
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    )
    if result.rowcount == 1:
        await conn.execute(insert(tracks).values(**track))
        return Outcome.SUCCEEDED
    return Outcome.CANCELLED if await mark_cancelled(conn, lease, now) else Outcome.LOST


async def mark_cancelled(conn: AsyncConnection, lease: Lease, now: datetime) -> bool:
    """The worker stopped at a checkpoint after a cancel request."""
    result = await conn.execute(
        update(jobs)
        .where(*_held(lease), jobs.c.cancel_requested.is_(True))
        .values(
            status=CANCELLED,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def fail_or_retry(
    conn: AsyncConnection,
    lease: Lease,
    now: datetime,
    error_message: str,
    *,
    retryable: bool,
    retry_delay_seconds: float = 1.0,
) -> str | None:
    """After an error: back to the queue while attempts remain (and retrying can help), else
    failed with ``error_message``. Returns the new status, or None if the lease was lost."""
    if await mark_cancelled(conn, lease, now):
        return CANCELLED
    if retryable and lease.attempt < lease.max_attempts:
        values: dict[str, Any] = {
            "status": QUEUED,
            "available_at": now + timedelta(seconds=retry_delay_seconds),
        }
        new_status = QUEUED
    else:
        values = {"status": FAILED, "error_message": error_message, "finished_at": now}
        new_status = FAILED
    result = await conn.execute(
        update(jobs)
        .where(*_held(lease))
        .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
    )
    return new_status if result.rowcount == 1 else None


async def rescue_expired_leases(conn: AsyncConnection, now: datetime) -> RescueCounts:
    """Jobs whose worker stopped heartbeating: cancel, fail after the last attempt, or re-queue."""
    expired = (jobs.c.status == RUNNING, jobs.c.lease_expires_at < now)
    released = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    cancelled = await conn.execute(
        update(jobs)
        .where(*expired, jobs.c.cancel_requested.is_(True))
        .values(status=CANCELLED, finished_at=now, **released)
    )
    failed = await conn.execute(
        update(jobs)
        .where(*expired, jobs.c.attempt >= jobs.c.max_attempts)
        .values(status=FAILED, error_message=CRASH_MESSAGE, finished_at=now, **released)
    )
    requeued = await conn.execute(
        update(jobs).where(*expired).values(status=QUEUED, available_at=now, **released)
    )
    return RescueCounts(
        requeued=requeued.rowcount, failed=failed.rowcount, cancelled=cancelled.rowcount
    )


@dataclass(frozen=True)
class QueueState:
    """The live part of the queue, for monitoring (index range scans, never the history)."""

    queued: int
    claimable: int  # queued and available now
    running: int
    oldest_claimable_seconds: float  # how long the oldest claimable job has waited; 0 if none


async def queue_state(conn: AsyncConnection, now: datetime) -> QueueState:
    """Counts of queued, claimable and running jobs and the oldest claimable job's wait."""
    queued, claimable, oldest = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(jobs.c.available_at <= now),
                func.min(jobs.c.available_at).filter(jobs.c.available_at <= now),
            ).where(jobs.c.status == QUEUED)
        )
    ).one()
    running = (
        await conn.execute(select(func.count()).where(jobs.c.status == RUNNING))
    ).scalar_one()
    # min() keeps the column's type, so ``oldest`` comes back as an aware UTC datetime.
    waited = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return QueueState(int(queued), int(claimable), int(running), waited)
