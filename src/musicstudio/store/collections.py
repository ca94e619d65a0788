"""Collections and their ordered tracks, as their owners see them.

Every read of a collection takes ``(org_id, user_id)``: another user's collection is
indistinguishable from a missing one. Membership changes run inside the caller's write
transaction after ``get_collection(..., lock=True)``, so appends and reorders of one
collection serialize.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import collection_tracks, collections, tracks

# What a client sees of a collection (its track count is computed per read).
VIEW_COLUMNS = (
    collections.c.id,
    collections.c.name,
    collections.c.description,
    collections.c.cover_track_id,
    collections.c.cover_image_url,
    collections.c.created_at,
    collections.c.updated_at,
)


async def insert_collection(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(collections).values(**values))


def _owned(org_id: str, user_id: str, collection_id: str) -> tuple[Any, ...]:
    return (
        collections.c.id == collection_id,
        collections.c.org_id == org_id,
        collections.c.user_id == user_id,
        collections.c.deleted_at.is_(None),
    )


async def get_collection(
    conn: AsyncConnection, org_id: str, user_id: str, collection_id: str, *, lock: bool = False
) -> RowMapping | None:
    """The caller's live collection, or None. ``lock`` (for a write): on PostgreSQL the row
    stays locked until commit; SQLite renders no ``FOR UPDATE``, its write transactions
    already hold the database's write lock from ``BEGIN IMMEDIATE``."""
    query = select(*VIEW_COLUMNS).where(*_owned(org_id, user_id, collection_id))
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping


async def list_collections(
    conn: AsyncConnection, org_id: str, user_id: str, *, limit: int, offset: int
) -> list[RowMapping]:
    """The caller's live collections, newest first, ties broken by id."""
    query = (
        select(*VIEW_COLUMNS)
        .where(
            collections.c.org_id == org_id,
            collections.c.user_id == user_id,
            collections.c.deleted_at.is_(None),
        )
        .order_by(collections.c.created_at.desc(), collections.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(query)).mappings().all())


async def update_collection(
    conn: AsyncConnection, collection_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(collections).where(collections.c.id == collection_id).values(**values)
    )


async def soft_delete_collection(conn: AsyncConnection, collection_id: str, now: datetime) -> None:
    """Gone for its owner; the rows stay for the record."""
    await conn.execute(
        update(collections)
        .where(collections.c.id == collection_id, collections.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )


_LIVE_ENTRIES = (
    select(collection_tracks.c.track_id, collection_tracks.c.position, collection_tracks.c.added_at)
    .join(tracks, tracks.c.id == collection_tracks.c.track_id)
    .where(tracks.c.deleted_at.is_(None))
)


async def count_tracks(conn: AsyncConnection, collection_id: str) -> int:
    """How many live (not soft-deleted) tracks the collection holds."""
    query = (
        select(func.count())
        .select_from(collection_tracks.join(tracks, tracks.c.id == collection_tracks.c.track_id))
        .where(collection_tracks.c.collection_id == collection_id, tracks.c.deleted_at.is_(None))
    )
    return int((await conn.execute(query)).scalar_one())


async def list_entries(
    conn: AsyncConnection, collection_id: str, *, limit: int, offset: int
) -> list[RowMapping]:
    """One page of the collection's live tracks by position (ties by track id)."""
    query = (
        _LIVE_ENTRIES.where(collection_tracks.c.collection_id == collection_id)
        .order_by(collection_tracks.c.position, collection_tracks.c.track_id)
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(query)).mappings().all())


async def get_entry(conn: AsyncConnection, collection_id: str, track_id: str) -> RowMapping | None:
    query = select(collection_tracks).where(
        collection_tracks.c.collection_id == collection_id,
        collection_tracks.c.track_id == track_id,
    )
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping


async def append_entry(
    conn: AsyncConnection, collection_id: str, track_id: str, now: datetime
) -> dict[str, Any]:
    """Put the track after the last one (position max + 1; 0 in an empty collection).

    The caller holds the collection's lock (``get_collection(..., lock=True)``), so max + 1
    is unique.
    """
    last = await conn.execute(
        select(func.max(collection_tracks.c.position)).where(
            collection_tracks.c.collection_id == collection_id
        )
    )
    highest = last.scalar_one_or_none()
    values = {
        "collection_id": collection_id,
        "track_id": track_id,
        "position": 0 if highest is None else int(highest) + 1,
        "added_at": now,
    }
    await conn.execute(insert(collection_tracks).values(**values))
    return values


async def remove_entry(conn: AsyncConnection, collection_id: str, track_id: str) -> bool:
    """Take the track out; False when it was not there."""
    result = await conn.execute(
        delete(collection_tracks).where(
            collection_tracks.c.collection_id == collection_id,
            collection_tracks.c.track_id == track_id,
        )
    )
    return bool(result.rowcount)


async def reorder_entries(
    conn: AsyncConnection, collection_id: str, ordered_track_ids: list[str]
) -> bool:
    """Listed tracks first in the given order, then the rest in their current order.

    Positions become 0..n-1. Ids not in the collection are ignored; for a repeated id the
    first occurrence wins. Returns whether any position changed. The caller holds the lock.
    """
    current = await conn.execute(
        select(collection_tracks.c.track_id, collection_tracks.c.position)
        .where(collection_tracks.c.collection_id == collection_id)
        .order_by(collection_tracks.c.position, collection_tracks.c.track_id)
    )
    positions: dict[str, int] = {row.track_id: row.position for row in current}
    listed = [track_id for track_id in dict.fromkeys(ordered_track_ids) if track_id in positions]
    chosen = set(listed)
    order = listed + [track_id for track_id in positions if track_id not in chosen]
    moves = [
        {"moved_track_id": track_id, "new_position": index}
        for index, track_id in enumerate(order)
        if positions[track_id] != index
    ]
    if moves:  # one executemany, whatever the collection's size
        await conn.execute(
            update(collection_tracks)
            .where(
                collection_tracks.c.collection_id == collection_id,
                collection_tracks.c.track_id == bindparam("moved_track_id"),
            )
            .values(position=bindparam("new_position")),
            moves,
        )
    return bool(moves)
