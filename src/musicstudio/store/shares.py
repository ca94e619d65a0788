"""Share links and what they point at: every query the share use cases run.

A link is found by its token's keyed hash (an equality lookup on a unique column, so no
timing oracle on the token). Owner-side reads take ``(org_id, user_id)``: another user's link
is indistinguishable from a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import (
    collection_tracks,
    collections,
    library_entries,
    share_links,
    tracks,
)


async def owns_live_track(conn: AsyncConnection, org_id: str, user_id: str, track_id: str) -> bool:
    """The caller created this track in this organization and it is not deleted."""
    query = select(tracks.c.id).where(
        tracks.c.id == track_id,
        tracks.c.org_id == org_id,
        tracks.c.user_id == user_id,
        tracks.c.deleted_at.is_(None),
    )
    return (await conn.execute(query)).first() is not None


async def insert_link(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(share_links).values(**values))


async def get_active_link(
    conn: AsyncConnection, token_hash: str, now: datetime
) -> RowMapping | None:
    """The link with this token hash, unless it is revoked or expired."""
    query = select(share_links).where(
        share_links.c.token_hash == token_hash,
        share_links.c.revoked_at.is_(None),
        or_(share_links.c.expires_at.is_(None), share_links.c.expires_at > now),
    )
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping


async def get_owned_link(
    conn: AsyncConnection, org_id: str, user_id: str, share_id: str
) -> RowMapping | None:
    """The caller's link (revoked or not), or None."""
    query = select(share_links).where(
        share_links.c.id == share_id,
        share_links.c.org_id == org_id,
        share_links.c.user_id == user_id,
    )
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping


async def revoke_link(conn: AsyncConnection, share_id: str, now: datetime) -> None:
    """Mark the link revoked; a second revoke keeps the first time."""
    await conn.execute(
        update(share_links)
        .where(share_links.c.id == share_id, share_links.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def get_track(conn: AsyncConnection, track_id: str) -> RowMapping | None:
    """The shared track, deleted or not (the caller decides what a deleted one shows)."""
    row = (await conn.execute(select(tracks).where(tracks.c.id == track_id))).first()
    return None if row is None else row._mapping


async def get_collection(conn: AsyncConnection, collection_id: str) -> RowMapping | None:
    """The shared collection, deleted or not."""
    query = select(collections).where(collections.c.id == collection_id)
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping


async def live_collection_tracks(
    conn: AsyncConnection, collection_id: str, *, limit: int
) -> list[RowMapping]:
    """The collection's live tracks by position (ties by track id), at most ``limit``."""
    query = (
        select(tracks)
        .join(collection_tracks, collection_tracks.c.track_id == tracks.c.id)
        .where(collection_tracks.c.collection_id == collection_id, tracks.c.deleted_at.is_(None))
        .order_by(collection_tracks.c.position, collection_tracks.c.track_id)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def add_library_entry(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """Insert the entry unless the user already has this track; True when inserted.

    ``ON CONFLICT DO NOTHING`` on the (org, user, track) unique index, so two concurrent
    saves of one track end with one entry and no error.
    """
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(library_entries)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[
                library_entries.c.org_id,
                library_entries.c.user_id,
                library_entries.c.track_id,
            ]
        )
    )
    result = await conn.execute(statement)
    return bool(result.rowcount)


async def get_library_entry(
    conn: AsyncConnection, org_id: str, user_id: str, track_id: str
) -> RowMapping | None:
    query = select(library_entries).where(
        library_entries.c.org_id == org_id,
        library_entries.c.user_id == user_id,
        library_entries.c.track_id == track_id,
    )
    row = (await conn.execute(query)).first()
    return None if row is None else row._mapping
