"""Tracks as their owners and readers see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import collection_tracks, library_entries, tracks


def readable_by(org_id: str, user_id: str) -> ColumnElement[bool]:
    """A live track the caller may read: one they created, or one in their library."""
    in_library = (
        select(library_entries.c.id)
        .where(
            library_entries.c.track_id == tracks.c.id,
            library_entries.c.org_id == org_id,
            library_entries.c.user_id == user_id,
        )
        .exists()
    )
    created = and_(tracks.c.org_id == org_id, tracks.c.user_id == user_id)
    return and_(tracks.c.deleted_at.is_(None), or_(created, in_library))


async def get_readable_track(
    conn: AsyncConnection, org_id: str, user_id: str, track_id: str
) -> RowMapping | None:
    """A live track the caller may read (``readable_by``), or None."""
    result = await conn.execute(
        select(tracks).where(tracks.c.id == track_id, readable_by(org_id, user_id))
    )
    row = result.first()
    return None if row is None else row._mapping


async def get_track_recipe(
    conn: AsyncConnection, org_id: str, user_id: str, track_id: str
) -> dict[str, Any] | None:
    """The plan a track was made from, for continuing it (the owner's tracks only)."""
    result = await conn.execute(
        select(tracks.c.recipe).where(
            tracks.c.id == track_id, tracks.c.org_id == org_id, tracks.c.user_id == user_id
        )
    )
    recipe = result.scalar_one_or_none()
    return dict(recipe) if isinstance(recipe, dict) else None


async def attach_stems(conn: AsyncConnection, track_id: str, stems: dict[str, Any]) -> bool:
    """Record stems written after the track was published; False if the track is gone."""
    result = await conn.execute(update(tracks).where(tracks.c.id == track_id).values(stems=stems))
    return bool(result.rowcount)


def library_page(
    org_id: str,
    user_id: str,
    *,
    mode: str | None,
    engine: str | None,
    collection_id: str | None,
    limit: int,
    offset: int,
) -> Select[Any]:
    """The caller's library, newest save first (ties by entry id); live tracks only."""
    stmt = (
        select(tracks)
        .join(library_entries, library_entries.c.track_id == tracks.c.id)
        .where(
            library_entries.c.org_id == org_id,
            library_entries.c.user_id == user_id,
            tracks.c.deleted_at.is_(None),
        )
    )
    if mode is not None:
        stmt = stmt.where(tracks.c.mode == mode)
    if engine is not None:
        stmt = stmt.where(tracks.c.engine == engine)
    if collection_id is not None:
        in_collection = (
            select(collection_tracks.c.track_id)
            .where(
                collection_tracks.c.collection_id == collection_id,
                collection_tracks.c.track_id == tracks.c.id,
            )
            .exists()
        )
        stmt = stmt.where(in_collection)
    order = (library_entries.c.created_at.desc(), library_entries.c.id.desc())
    return stmt.order_by(*order).limit(limit).offset(offset)


async def soft_delete_track(conn: AsyncConnection, track_id: str, now: datetime) -> None:
    """Gone from every library, collection view and share (rows stay for the record)."""
    await conn.execute(
        update(tracks)
        .where(tracks.c.id == track_id, tracks.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
