"""The jobs table as a queue: claim, heartbeat, finish, release and rescue.

Every state change a worker makes is a compare-and-set on (job id, attempt,
lease owner, status running): a worker whose lease expired, or was rescued and
re-claimed by another worker, changes nothing. A claim increments ``attempt``
atomically and nothing ever lowers it, so each attempt belongs to exactly one worker.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    String,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio import ids
from musicstudio.db.database import Database
from musicstudio.db.tables import UtcDateTime, library_entries, tracks
from musicstudio.db.tables import generation_jobs as jobs
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
    available_at: datetime  # when the job became claimable (submitted, or re-queued)


@dataclass(frozen=True)
class Heartbeat:
    held: bool  # False: the lease was lost, stop working and change nothing
    cancel_requested: bool


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    LOST = "lost"
    RELEASED = "released"  # handed back to the queue by a stopping worker


@dataclass(frozen=True)
class RescueCounts:
    requeued: int
    failed: int
    cancelled: int


def _held() -> tuple[ColumnElement[bool], ...]:
    """The lease still holds: this attempt, this owner, still running."""
    return (
        jobs.c.id == bindparam("held_id"),
        jobs.c.attempt == bindparam("held_attempt"),
        jobs.c.lease_owner == bindparam("held_owner"),
        jobs.c.status == RUNNING,
    )


def _held_params(lease: Lease, now: datetime) -> dict[str, Any]:
    return {
        "held_id": lease.job_id,
        "held_attempt": lease.attempt,
        "held_owner": lease.owner,
        "now": now,
    }


_NOW = bindparam("now", type_=UtcDateTime())
_LEASE_EXPIRES = bindparam("lease_until", type_=UtcDateTime())
_RELEASED = {"lease_owner": None, "lease_expires_at": None, "updated_at": _NOW}

# The queue's hot statements are built once, with bound parameters, so the PostgreSQL path
# compiles each one once for the plain driver (``Database.execute_one``).
_CLAIM = (
    update(jobs)
    .where(
        jobs.c.id
        == (
            select(jobs.c.id)
            .where(jobs.c.status == QUEUED, jobs.c.available_at <= _NOW)
            .order_by(jobs.c.available_at, jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers instead
            .scalar_subquery()
        ),
        jobs.c.status == QUEUED,
    )
    .values(
        status=RUNNING,
        attempt=jobs.c.attempt + 1,
        lease_owner=bindparam("owner"),
        lease_expires_at=_LEASE_EXPIRES,
        started_at=_NOW,
        updated_at=_NOW,
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
        jobs.c.available_at,
    )
)

# Clients never see progress go down: a retried attempt reports the maximum so far.
_PROGRESS = bindparam("progress_floor", type_=Integer())
_HEARTBEAT = (
    update(jobs)
    .where(*_held())
    .values(
        lease_expires_at=_LEASE_EXPIRES,
        progress=case((jobs.c.progress < _PROGRESS, _PROGRESS), else_=jobs.c.progress),
        updated_at=_NOW,
    )
    .returning(jobs.c.cancel_requested)
)

# A cancellation that arrived during the last stage wins over the result.
_SUCCEED = (
    update(jobs)
    .where(*_held(), jobs.c.cancel_requested.is_(False))
    .values(
        status=SUCCEEDED,
        progress=100,
        result_track_id=bindparam("new_track_id"),
        finished_at=_NOW,
        **_RELEASED,
    )
    .returning(jobs.c.id)
)

_CANCEL = (
    update(jobs)
    .where(*_held(), jobs.c.cancel_requested.is_(True))
    .values(status=CANCELLED, finished_at=_NOW, **_RELEASED)
    .returning(jobs.c.id)
)


# A stopping worker hands its job back: queued and claimable at once, or cancelled if a
# cancel is pending. The interrupted attempt is not held against the job, and ``attempt``
# is not lowered to achieve that: the budget grows by one instead, so the next claim still
# gets a number no lease has had, and a stale lease of the released attempt never matches.
_CANCEL_PENDING = jobs.c.cancel_requested.is_(True)
_HAND_BACK = (
    update(jobs)
    .where(*_held())
    .values(
        status=case((_CANCEL_PENDING, CANCELLED), else_=QUEUED),
        max_attempts=case((_CANCEL_PENDING, jobs.c.max_attempts), else_=jobs.c.max_attempts + 1),
        available_at=case((_CANCEL_PENDING, jobs.c.available_at), else_=_NOW),
        finished_at=case((_CANCEL_PENDING, _NOW), else_=jobs.c.finished_at),
        **_RELEASED,
    )
    .returning(jobs.c.status)
)


@functools.lru_cache(maxsize=8)
def _succeed_with_track(columns: tuple[str, ...]) -> Insert:
    """PostgreSQL: ``_SUCCEED``, the track insert and the creator's library entry as one
    statement (data-modifying CTEs), so completing a job is one round trip and the track and
    its entry exist only if the job succeeded."""
    done = _SUCCEED.cte("succeeded")
    values = [bindparam(f"track_{name}", type_=tracks.c[name].type) for name in columns]
    new_track = (
        insert(tracks)
        .from_select(list(columns), select(*values).select_from(done))
        .returning(tracks.c.id, tracks.c.org_id, tracks.c.user_id, tracks.c.created_at)
        .cte("new_track")
    )
    entry = select(
        bindparam("library_entry_id", type_=String()),
        new_track.c.org_id,
        new_track.c.user_id,
        new_track.c.id,
        literal(GENERATED, String()),
        new_track.c.created_at,
    )
    return (
        insert(library_entries)
        .from_select(_ENTRY_COLUMNS, entry.select_from(new_track))
        .returning(library_entries.c.id)
    )


GENERATED = "generated"  # the library entry a succeeded job gives its creator
_ENTRY_COLUMNS = ["id", "org_id", "user_id", "track_id", "source", "created_at"]


async def claim_next_job(
    db: Database, owner: str, now: datetime, lease_seconds: float
) -> Lease | None:
    """Take the oldest available queued job under a fresh lease, or None if there is none."""
    row = await db.execute_one(
        _CLAIM,
        {"now": now, "owner": owner, "lease_until": now + timedelta(seconds=lease_seconds)},
    )
    if row is None:
        return None
    return Lease(
        job_id=row["id"],
        attempt=row["attempt"],
        owner=owner,
        org_id=row["org_id"],
        user_id=row["user_id"],
        engine=row["engine"],
        mode=row["mode"],
        request=dict(row["request"]),
        max_attempts=row["max_attempts"],
        available_at=row["available_at"],
    )


async def heartbeat(
    db: Database, lease: Lease, now: datetime, lease_seconds: float, progress: int
) -> Heartbeat:
    """Extend the lease and record progress; tells whether cancellation was asked for."""
    params = _held_params(lease, now)
    params["lease_until"] = now + timedelta(seconds=lease_seconds)
    params["progress_floor"] = max(0, min(int(progress), MAX_RUNNING_PROGRESS))
    row = await db.execute_one(_HEARTBEAT, params)
    if row is None:
        return Heartbeat(held=False, cancel_requested=False)
    return Heartbeat(held=True, cancel_requested=bool(row["cancel_requested"]))


async def complete_job(db: Database, lease: Lease, now: datetime, track: dict[str, Any]) -> Outcome:
    """Record success, insert its track and the creator's library entry atomically, if the
    lease still holds and no cancellation was asked for."""
    params = _held_params(lease, now)
    params["new_track_id"] = track["id"]
    params["library_entry_id"] = ids.new_id(ids.LIBRARY_ENTRY)
    if db.dialect == "postgresql":
        columns = tuple(sorted(track))
        params.update({f"track_{name}": track[name] for name in columns})
        succeeded = await db.execute_one(_succeed_with_track(columns), params) is not None
    else:  # SQLite has no data-modifying CTEs: two statements in one transaction
        async with db.write() as conn:
            succeeded = (await conn.execute(_SUCCEED, params)).first() is not None
            if succeeded:
                await conn.execute(insert(tracks).values(**track))
                await conn.execute(
                    insert(library_entries).values(
                        id=params["library_entry_id"],
                        org_id=lease.org_id,
                        user_id=lease.user_id,
                        track_id=track["id"],
                        source=GENERATED,
                        created_at=track["created_at"],
                    )
                )
    if succeeded:
        return Outcome.SUCCEEDED
    return Outcome.CANCELLED if await mark_cancelled(db, lease, now) else Outcome.LOST


async def mark_cancelled(db: Database, lease: Lease, now: datetime) -> bool:
    """The worker stopped at a checkpoint after a cancel request."""
    return await db.execute_one(_CANCEL, _held_params(lease, now)) is not None


async def release_job(conn: AsyncConnection, lease: Lease, now: datetime) -> Outcome:
    """Hand a held job back to the queue, claimable at ``now``, without using up an attempt
    (a worker stopping, not the job failing). CANCELLED if a cancel was pending, LOST if the
    lease no longer holds. Announce work in the same transaction so others take it at once."""
    row = (await conn.execute(_HAND_BACK, _held_params(lease, now))).first()
    if row is None:
        return Outcome.LOST
    return Outcome.CANCELLED if row.status == CANCELLED else Outcome.RELEASED


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
    if retryable and lease.attempt < lease.max_attempts:
        values: dict[str, Any] = {
            "status": QUEUED,
            "available_at": now + timedelta(seconds=retry_delay_seconds),
        }
        new_status = QUEUED
    else:
        values = {"status": FAILED, "error_message": error_message, "finished_at": now}
        new_status = FAILED
    params = _held_params(lease, now)
    result = await conn.execute(
        update(jobs)
        .where(*_held(), jobs.c.cancel_requested.is_(False))
        .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values),
        params,
    )
    if result.rowcount == 1:
        return new_status
    # Not changed: either a cancel is pending (it wins, even one that arrived a moment ago)
    # or the lease is gone.
    if (await conn.execute(_CANCEL, params)).first() is not None:
        return CANCELLED
    return None


async def rescue_expired_leases(conn: AsyncConnection, now: datetime) -> RescueCounts:
    """Jobs whose worker stopped heartbeating: cancel, fail after the last attempt, or re-queue."""
    expired = (jobs.c.status == RUNNING, jobs.c.lease_expires_at < now)
    not_cancelling = jobs.c.cancel_requested.is_(False)
    released = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    failed = await conn.execute(
        update(jobs)
        .where(*expired, not_cancelling, jobs.c.attempt >= jobs.c.max_attempts)
        .values(status=FAILED, error_message=CRASH_MESSAGE, finished_at=now, **released)
    )
    requeued = await conn.execute(
        update(jobs)
        .where(*expired, not_cancelling)
        .values(status=QUEUED, available_at=now, **released)
    )
    # Last, and for every expired job left: on PostgreSQL each statement sees what committed
    # before it, so a cancel asked for while the statements above ran is still honoured here
    # instead of the job going back to the queue with its cancel pending.
    cancelled = await conn.execute(
        update(jobs).where(*expired).values(status=CANCELLED, finished_at=now, **released)
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
