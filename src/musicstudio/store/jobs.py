"""Generation jobs as tenants see them: insert, get, list, idempotency lookup, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    RowMapping,
    Select,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import LIVE_JOB_CONDITION, organizations
from musicstudio.db.tables import generation_jobs as jobs

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
REFUSED = "refused"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, REFUSED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, REFUSED})

# The columns a client sees (the reference's job object, less the per-request URLs).
VIEW_COLUMNS = (
    jobs.c.id,
    jobs.c.status,
    jobs.c.progress,
    jobs.c.engine,
    jobs.c.mode,
    jobs.c.created_at,
    jobs.c.result_track_id,
    jobs.c.error_message,
    jobs.c.refusal_reason,
)
_DETAIL_COLUMNS = (*VIEW_COLUMNS, jobs.c.request_fingerprint, jobs.c.cancel_requested)


async def insert_job(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(jobs).values(**values))


async def lock_organization_queue(conn: AsyncConnection, org_id: str) -> None:
    """Serialise enqueues of one organization until the transaction ends (PostgreSQL).

    ``FOR NO KEY UPDATE``: concurrent enqueuers wait, while inserts elsewhere that merely
    reference the organization (foreign keys) do not. SQLite's write transaction already
    admits one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(organizations.c.id)
            .where(organizations.c.id == org_id)
            .with_for_update(key_share=True)
        )


async def count_live_jobs(conn: AsyncConnection, org_id: str, up_to: int) -> int:
    """Queued + running jobs of an organization, counted no further than ``up_to``."""
    live = (
        select(jobs.c.id)
        .where(jobs.c.org_id == org_id, text(LIVE_JOB_CONDITION))
        .limit(up_to)
        .subquery()
    )
    return int((await conn.execute(select(func.count()).select_from(live))).scalar_one())


async def get_job(
    conn: AsyncConnection, org_id: str, user_id: str, job_id: str
) -> RowMapping | None:
    """The caller's job, or None: another user's job is indistinguishable from a missing one."""
    return await _one(conn, jobs.c.id == job_id, jobs.c.org_id == org_id, jobs.c.user_id == user_id)


async def find_by_idempotency_key(
    conn: AsyncConnection, org_id: str, user_id: str, key: str
) -> RowMapping | None:
    return await _one(
        conn, jobs.c.org_id == org_id, jobs.c.user_id == user_id, jobs.c.idempotency_key == key
    )


async def _one(conn: AsyncConnection, *conditions: ColumnElement[bool]) -> RowMapping | None:
    row = (await conn.execute(select(*_DETAIL_COLUMNS).where(*conditions))).first()
    return None if row is None else row._mapping


def _list_jobs(*, by_status: bool) -> Select[Any]:
    """Newest first, ties broken by id (served by the org, user[, status], created_at, id index).

    Parameters: ``org_id``, ``user_id``, ``limit``, ``offset`` and, filtered, ``status``.
    """
    stmt = select(*VIEW_COLUMNS).where(
        jobs.c.org_id == bindparam("org_id"), jobs.c.user_id == bindparam("user_id")
    )
    if by_status:
        stmt = stmt.where(jobs.c.status == bindparam("status"))
    return (
        stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        .limit(bindparam("limit", type_=Integer()))
        .offset(bindparam("offset", type_=Integer()))
    )


# Built once each, so the plain drivers compile them once (``Database.fetch_all``).
LIST_JOBS = _list_jobs(by_status=False)
LIST_JOBS_BY_STATUS = _list_jobs(by_status=True)


async def cancel_job(
    conn: AsyncConnection, org_id: str, user_id: str, job_id: str, now: datetime
) -> None:
    """Queued → cancelled at once; running → flagged for the worker; terminal → unchanged."""
    scope = (jobs.c.id == job_id, jobs.c.org_id == org_id, jobs.c.user_id == user_id)
    await conn.execute(
        update(jobs)
        .where(*scope, jobs.c.status == QUEUED)
        .values(status=CANCELLED, finished_at=now, updated_at=now)
    )
    await conn.execute(
        update(jobs)
        .where(*scope, jobs.c.status == RUNNING, jobs.c.cancel_requested.is_(False))
        .values(cancel_requested=True, updated_at=now)
    )
