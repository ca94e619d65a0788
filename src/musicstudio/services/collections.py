"""Collections: the owner's named, ordered sets of tracks they can read in their organization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio import ids
from musicstudio.clock import utcnow
from musicstudio.errors import NotFound, ValidationFailed
from musicstudio.services.context import ServiceContext
from musicstudio.services.views import acknowledgement, whole_seconds
from musicstudio.store import collections as store
from musicstudio.store.accounts import Principal
from musicstudio.store.tracks import get_readable_track

# The fields a create or update may set (the API's models check their types and sizes).
EDITABLE = ("name", "description", "cover_track_id", "cover_image_url")


def collection_view(row: Mapping[Any, Any], track_count: int | None) -> dict[str, Any]:
    """The reference's collection; ``track_count`` is None in lists."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "cover_track_id": row["cover_track_id"],
        "cover_image_url": row["cover_image_url"],
        "track_count": track_count,
        "created_at": whole_seconds(row["created_at"]),
        "updated_at": whole_seconds(row["updated_at"]),
    }


def entry_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "track_id": row["track_id"],
        "position": row["position"],
        "added_at": whole_seconds(row["added_at"]),
    }


async def _owned(
    conn: AsyncConnection, principal: Principal, collection_id: str, *, lock: bool = False
) -> Mapping[Any, Any]:
    """The caller's live collection; the same 404 for missing, deleted and others' ones.
    ``lock`` for a write: concurrent changes to one collection wait for this one."""
    row = await store.get_collection(
        conn, principal.org_id, principal.user_id, collection_id, lock=lock
    )
    if row is None:
        raise NotFound("Collection not found.")
    return row


async def _track_in_org(
    conn: AsyncConnection, principal: Principal, track_id: str
) -> Mapping[Any, Any] | None:
    """A live track the caller can read (created or in their library) of their organization."""
    row = await get_readable_track(conn, principal.org_id, principal.user_id, track_id)
    return row if row is not None and row["org_id"] == principal.org_id else None


async def _check_cover(conn: AsyncConnection, principal: Principal, track_id: str | None) -> None:
    if track_id is not None and await _track_in_org(conn, principal, track_id) is None:
        raise ValidationFailed.field("cover_track_id", "no readable track with this id")


async def create_collection(
    ctx: ServiceContext, principal: Principal, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A new, empty collection of the caller's."""
    now = utcnow()
    values: dict[str, Any] = {key: fields.get(key) for key in EDITABLE}
    values |= {
        "id": ids.new_id(ids.COLLECTION),
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "created_at": now,
        "updated_at": now,
    }
    async with ctx.db.write() as conn:
        await _check_cover(conn, principal, values["cover_track_id"])
        await store.insert_collection(conn, values)
    return collection_view(values, track_count=0)


async def list_collections(
    ctx: ServiceContext, principal: Principal, *, limit: int, offset: int
) -> list[dict[str, Any]]:
    """One page of the caller's collections, newest first; no track counts."""
    async with ctx.db.read() as conn:
        rows = await store.list_collections(
            conn, principal.org_id, principal.user_id, limit=limit, offset=offset
        )
    return [collection_view(row, track_count=None) for row in rows]


async def get_collection(
    ctx: ServiceContext, principal: Principal, collection_id: str
) -> dict[str, Any]:
    """The caller's collection with its count of live tracks."""
    async with ctx.db.read() as conn:
        row = await _owned(conn, principal, collection_id)
        count = await store.count_tracks(conn, collection_id)
    return collection_view(row, count)


async def update_collection(
    ctx: ServiceContext, principal: Principal, collection_id: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Partial update: only the given fields change; a given None clears (not ``name``)."""
    changes = {key: value for key, value in changes.items() if key in EDITABLE}
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed.field("name", "a collection's name cannot be null")
    async with ctx.db.write() as conn:
        row = await _owned(conn, principal, collection_id, lock=True)
        if changes:
            await _check_cover(conn, principal, changes.get("cover_track_id"))
            await store.update_collection(conn, collection_id, {**changes, "updated_at": utcnow()})
            row = await _owned(conn, principal, collection_id)
        count = await store.count_tracks(conn, collection_id)
    return collection_view(row, count)


async def delete_collection(
    ctx: ServiceContext, principal: Principal, collection_id: str
) -> dict[str, Any]:
    """Soft delete; a deleted collection answers 404 from then on."""
    async with ctx.db.write() as conn:
        await _owned(conn, principal, collection_id, lock=True)
        await store.soft_delete_collection(conn, collection_id, utcnow())
    return acknowledgement(collection_id, "Collection deleted.")


async def list_tracks(
    ctx: ServiceContext, principal: Principal, collection_id: str, *, limit: int, offset: int
) -> dict[str, Any]:
    """One page of the collection's live tracks, by position."""
    async with ctx.db.read() as conn:
        await _owned(conn, principal, collection_id)
        rows = await store.list_entries(conn, collection_id, limit=limit, offset=offset)
    return {
        "collection_id": collection_id,
        "items": [entry_view(row) for row in rows],
        "limit": limit,
        "offset": offset,
    }


async def add_track(
    ctx: ServiceContext, principal: Principal, collection_id: str, track_id: str
) -> tuple[dict[str, Any], bool]:
    """Append a readable track of the caller's organization; idempotent.

    Returns the track's entry and whether it was added now (False: it was already there,
    and keeps its place).
    """
    async with ctx.db.write() as conn:
        # Locked first, so concurrent appends to one collection take distinct positions.
        await _owned(conn, principal, collection_id, lock=True)
        if await _track_in_org(conn, principal, track_id) is None:
            raise NotFound("Track not found.")
        entry: Mapping[Any, Any] | None = await store.get_entry(conn, collection_id, track_id)
        added = entry is None
        if entry is None:
            now = utcnow()
            entry = await store.append_entry(conn, collection_id, track_id, now)
            await store.update_collection(conn, collection_id, {"updated_at": now})
    return {"collection_id": collection_id, **entry_view(entry)}, added


async def remove_track(
    ctx: ServiceContext, principal: Principal, collection_id: str, track_id: str
) -> dict[str, Any]:
    """Take a track out; idempotent (a track that is not there is already out)."""
    async with ctx.db.write() as conn:
        await _owned(conn, principal, collection_id, lock=True)
        if await store.remove_entry(conn, collection_id, track_id):
            await store.update_collection(conn, collection_id, {"updated_at": utcnow()})
    return acknowledgement(track_id, "Track removed from collection.")


async def reorder(
    ctx: ServiceContext, principal: Principal, collection_id: str, ordered_track_ids: list[str]
) -> dict[str, Any]:
    """Listed tracks first, in the given order; the others after them, in their order."""
    async with ctx.db.write() as conn:
        await _owned(conn, principal, collection_id, lock=True)
        if await store.reorder_entries(conn, collection_id, ordered_track_ids):
            await store.update_collection(conn, collection_id, {"updated_at": utcnow()})
    return acknowledgement(collection_id, "Collection reordered.")
