"""Share links: create (creator/owner only), resolve without authentication, save a shared
track into one's library, revoke.

The raw token (``shr_`` + 43 url-safe characters, 256 random bits) is returned once; the
database holds only its HMAC under the server secret, and a token is checked by hashing it
and looking the hash up. Unknown, revoked and expired tokens all answer the same 404.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from musicstudio import ids
from musicstudio.clock import utcnow
from musicstudio.errors import NotFound, ValidationFailed
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import playback_ttl
from musicstudio.services.views import acknowledgement, track_view, whole_seconds
from musicstudio.store import collections as collections_store
from musicstudio.store import shares as store
from musicstudio.store.accounts import Principal

TOKEN_PREFIX = "shr_"
TOKEN_BYTES = 32  # secrets.token_urlsafe(32) → 43 characters
MAX_TOKEN_LENGTH = 128
MAX_EXPIRY_DAYS = 90
# A shared collection lists at most this many tracks (its track_count is the full number).
MAX_SHARED_COLLECTION_TRACKS = 500

TargetType = Literal["track", "collection"]

_LINK_NOT_FOUND = "This share link does not exist, was revoked or has expired."


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def share_url(base_url: str, token: str) -> str:
    return f"{base_url}/v1/music/shared/{token}"


async def create_share(
    ctx: ServiceContext,
    principal: Principal,
    target_type: TargetType,
    target_id: str,
    *,
    visibility: str,
    expires_in_days: int | None,
    base_url: str,
) -> dict[str, Any]:
    """A new link to the caller's own live track or collection (404 for anything else)."""
    now = utcnow().replace(microsecond=0)
    days = None if expires_in_days is None else min(expires_in_days, MAX_EXPIRY_DAYS)
    if days is not None and days < 1:
        raise ValidationFailed.field("expires_in_days", "must be at least 1")
    token = new_token()
    values = {
        "id": ids.new_id(ids.SHARE_LINK),
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "token_hash": ctx.hasher.hash(token),
        "target_type": target_type,
        "track_id": target_id if target_type == "track" else None,
        "collection_id": target_id if target_type == "collection" else None,
        "visibility": visibility,
        "expires_at": None if days is None else now + timedelta(days=days),
        "created_at": now,
    }
    async with ctx.db.write() as conn:
        if target_type == "track":
            owned = await store.owns_live_track(
                conn, principal.org_id, principal.user_id, target_id
            )
        else:
            owned = (
                await collections_store.get_collection(
                    conn, principal.org_id, principal.user_id, target_id
                )
                is not None
            )
        if not owned:
            missing = "Track not found." if target_type == "track" else "Collection not found."
            raise NotFound(missing)
        await store.insert_link(conn, values)
    return {
        "id": values["id"],
        "token": token,
        "url": share_url(base_url, token),
        "target_type": target_type,
        "visibility": visibility,
        "expires_at": whole_seconds(values["expires_at"]),
        "created_at": whole_seconds(now),
    }


def _token_hash(ctx: ServiceContext, token: str) -> str:
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise NotFound(_LINK_NOT_FOUND)
    return ctx.hasher.hash(token)


def _licence(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "licence_class": row["licence_class"],
        "licence_version": row["licence_version"],
        "commercial_use": row["commercial_use"],
        "requires_attribution": row["requires_attribution"],
    }


def _shared_track_view(
    ctx: ServiceContext, row: Mapping[Any, Any], base_url: str
) -> dict[str, Any]:
    """The track view with fresh URLs for the master and each stem, and its licence."""
    expires_at = int(utcnow().timestamp()) + playback_ttl(ctx, row["measured_duration_seconds"])

    def signed(key: str) -> str:
        return ctx.storage.playback_url(key, expires_at, base_url)

    stems: dict[str, Any] = row["stems"] or {}
    stem_urls = {name: signed(stem["storage_key"]) for name, stem in sorted(stems.items())}
    view = track_view(row, playback_url=signed(row["storage_key"]), stem_urls=stem_urls or None)
    return {**view, "licence": _licence(row)}


def _collection_view(row: Mapping[Any, Any], track_count: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "cover_image_url": row["cover_image_url"],
        "track_count": track_count,
        "created_at": whole_seconds(row["created_at"]),
        "updated_at": whole_seconds(row["updated_at"]),
    }


async def resolve_share(ctx: ServiceContext, token: str, base_url: str) -> dict[str, Any]:
    """What a link shows anyone who has it; removed content → ``available: false``."""
    token_hash = _token_hash(ctx, token)
    async with ctx.db.read() as conn:
        link = await store.get_active_link(conn, token_hash, utcnow())
        if link is None:
            raise NotFound(_LINK_NOT_FOUND)
        body: dict[str, Any] = {
            "kind": link["target_type"],
            "available": True,
            "message": None,
            "share": {
                "target_type": link["target_type"],
                "visibility": link["visibility"],
                "expires_at": whole_seconds(link["expires_at"]),
            },
            "track": None,
            "collection": None,
            "tracks": None,
        }
        if link["target_type"] == "track":
            track = await store.get_track(conn, link["track_id"])
            if track is None or track["deleted_at"] is not None:
                return {**body, "available": False, "message": "This track has been removed."}
            return {**body, "track": _shared_track_view(ctx, track, base_url)}
        collection = await store.get_collection(conn, link["collection_id"])
        if collection is None or collection["deleted_at"] is not None:
            return {**body, "available": False, "message": "This collection has been removed."}
        count = await collections_store.count_tracks(conn, collection["id"])
        rows = await store.live_collection_tracks(
            conn, collection["id"], limit=MAX_SHARED_COLLECTION_TRACKS
        )
    return {
        **body,
        "collection": _collection_view(collection, count),
        "tracks": [_shared_track_view(ctx, row, base_url) for row in rows],
    }


def _entry_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "track_id": row["track_id"],
        "source": row["source"],
        "share_link_id": row["share_link_id"],
        "created_at": whole_seconds(row["created_at"]),
    }


async def save_shared_track(
    ctx: ServiceContext, principal: Principal, token: str
) -> tuple[dict[str, Any], bool]:
    """Add the shared track to the caller's library; ``(entry, created)``.

    Idempotent: a track already in the library (saved or made by the caller) returns its
    existing entry with ``created`` False. A removed track answers 404 like a dead link.
    """
    token_hash = _token_hash(ctx, token)
    now = utcnow().replace(microsecond=0)
    async with ctx.db.write() as conn:
        link = await store.get_active_link(conn, token_hash, now)
        if link is None:
            raise NotFound(_LINK_NOT_FOUND)
        if link["target_type"] != "track":
            raise ValidationFailed(
                "Only shared tracks can be saved to a library; this link shares a collection.",
                details={"errors": [{"field": "token", "message": "links a collection"}]},
            )
        track = await store.get_track(conn, link["track_id"])
        if track is None or track["deleted_at"] is not None:
            raise NotFound("This shared track has been removed.")
        created = await store.add_library_entry(
            conn,
            {
                "id": ids.new_id(ids.LIBRARY_ENTRY),
                "org_id": principal.org_id,
                "user_id": principal.user_id,
                "track_id": track["id"],
                "source": "shared",
                "share_link_id": link["id"],
                "created_at": now,
            },
        )
        entry = await store.get_library_entry(
            conn, principal.org_id, principal.user_id, track["id"]
        )
    assert entry is not None  # inserted above, or there already
    return _entry_view(entry), created


async def revoke_share(ctx: ServiceContext, principal: Principal, share_id: str) -> dict[str, Any]:
    """Revoke the caller's link; revoking again succeeds too. Saved copies stay."""
    async with ctx.db.write() as conn:
        link = await store.get_owned_link(conn, principal.org_id, principal.user_id, share_id)
        if link is None:
            raise NotFound("Share link not found.")
        await store.revoke_link(conn, share_id, utcnow())
    return acknowledgement(share_id, "Share link revoked.")
