"""Focus sessions and their segment jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import focus_sessions, generation_jobs, tracks
from musicstudio.store.jobs import CANCELLED, FAILED, QUEUED, REFUSED, RUNNING, SUCCEEDED

ACTIVE = "active"
ENDED = "ended"
STOPPED_CAP = "stopped_cap"


async def insert_session(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(focus_sessions).values(**values))


async def get_session(
    conn: AsyncConnection, org_id: str, user_id: str, session_id: str, *, lock: bool = False
) -> RowMapping | None:
    """The caller's session, or None (another user's session looks missing)."""
    query = select(focus_sessions).where(
        focus_sessions.c.id == session_id,
        focus_sessions.c.org_id == org_id,
        focus_sessions.c.user_id == user_id,
    )
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping


async def segment_states(conn: AsyncConnection, session_id: str) -> list[RowMapping]:
    """Every segment job of the session, by index, with its track when it succeeded."""
    query = (
        select(
            generation_jobs.c.segment_index,
            generation_jobs.c.status,
            generation_jobs.c.created_at,
            tracks.c.id.label("track_id"),
            tracks.c.storage_key,
            tracks.c.measured_duration_seconds,
        )
        .select_from(generation_jobs)
        .outerjoin(
            tracks,
            (tracks.c.id == generation_jobs.c.result_track_id) & tracks.c.deleted_at.is_(None),
        )
        .where(generation_jobs.c.focus_session_id == session_id)
        .order_by(generation_jobs.c.segment_index)
    )
    return list((await conn.execute(query)).mappings().all())


async def minutes_generated_since(
    conn: AsyncConnection, org_id: str, user_id: str, since: datetime
) -> float:
    """Minutes of focus audio the user has queued or made since ``since`` (failed, refused
    and cancelled segments cost nothing)."""
    query = select(func.coalesce(func.sum(focus_sessions.c.segment_seconds), 0)).where(
        generation_jobs.c.focus_session_id == focus_sessions.c.id,
        generation_jobs.c.org_id == org_id,
        generation_jobs.c.user_id == user_id,
        generation_jobs.c.created_at >= since,
        generation_jobs.c.status.in_((QUEUED, RUNNING, SUCCEEDED)),
    )
    seconds = (await conn.execute(query)).scalar_one()
    return float(seconds) / 60.0


async def stop_session(conn: AsyncConnection, session_id: str, status: str, now: datetime) -> None:
    """No new segments: queued ones are cancelled, running ones asked to stop."""
    await conn.execute(
        update(focus_sessions)
        .where(focus_sessions.c.id == session_id, focus_sessions.c.status == ACTIVE)
        .values(status=status, ended_at=now, updated_at=now)
    )
    of_session = generation_jobs.c.focus_session_id == session_id
    await conn.execute(
        update(generation_jobs)
        .where(of_session, generation_jobs.c.status == QUEUED)
        .values(status=CANCELLED, finished_at=now, updated_at=now)
    )
    await conn.execute(
        update(generation_jobs)
        .where(of_session, generation_jobs.c.status == RUNNING)
        .values(cancel_requested=True, updated_at=now)
    )


PENDING = frozenset({QUEUED, RUNNING})
GONE = frozenset({FAILED, CANCELLED, REFUSED})
