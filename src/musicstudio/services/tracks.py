"""Tracks and the library: list, read with fresh signed URLs, delete by the creator."""

from __future__ import annotations

from typing import Any

from musicstudio.clock import utcnow
from musicstudio.errors import InsufficientPermissions, NotFound
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import playback_ttl
from musicstudio.services.views import acknowledgement, track_view
from musicstudio.store import collections as collections_store
from musicstudio.store import tracks as store
from musicstudio.store.accounts import Principal


async def list_tracks(
    ctx: ServiceContext,
    principal: Principal,
    *,
    mode: str | None,
    engine: str | None,
    collection_id: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """One page of the caller's library, newest save first; no URLs in lists."""
    statement = store.library_page(
        principal.org_id,
        principal.user_id,
        mode=mode,
        engine=engine,
        collection_id=collection_id,
        limit=limit,
        offset=offset,
    )
    async with ctx.db.read() as conn:
        if collection_id is not None and not await collections_store.get_collection(
            conn, principal.org_id, principal.user_id, collection_id
        ):
            raise NotFound("Collection not found.")
        rows = (await conn.execute(statement)).mappings().all()
    return [track_view(row) for row in rows]


async def get_track(
    ctx: ServiceContext, principal: Principal, track_id: str, base_url: str
) -> dict[str, Any]:
    """A track the caller created or saved, with fresh signed URLs for the master, every
    stem and the MIDI, and the recipe it was made from."""
    async with ctx.db.read() as conn:
        row = await store.get_readable_track(conn, principal.org_id, principal.user_id, track_id)
    if row is None:
        raise NotFound("Track not found.")
    expires_at = int(utcnow().timestamp()) + playback_ttl(ctx, row["measured_duration_seconds"])

    def signed(key: str) -> str:
        return ctx.storage.playback_url(key, expires_at, base_url)

    stems: dict[str, Any] = row["stems"] or {}
    stem_urls = {name: signed(stem["storage_key"]) for name, stem in sorted(stems.items())}
    view = track_view(row, playback_url=signed(row["storage_key"]), stem_urls=stem_urls or None)
    midi_url = signed(row["midi_key"]) if row["midi_key"] else None
    return {**view, "midi_url": midi_url, "recipe": row["recipe"]}


async def delete_track(ctx: ServiceContext, principal: Principal, track_id: str) -> dict[str, Any]:
    """Soft delete by the creator: 403 for a reader who did not create it, 404 otherwise."""
    async with ctx.db.write() as conn:
        row = await store.get_readable_track(conn, principal.org_id, principal.user_id, track_id)
        if row is None:
            raise NotFound("Track not found.")
        if (row["org_id"], row["user_id"]) != (principal.org_id, principal.user_id):
            raise InsufficientPermissions("Only the track's creator can delete it.")
        await store.soft_delete_track(conn, track_id, utcnow())
    return acknowledgement(track_id, "Track deleted.")
