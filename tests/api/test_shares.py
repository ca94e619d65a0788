"""Share links: create (creator/owner only), resolve without authentication (fresh URLs,
licences, removed content), save into another user's library, revoke, and the per-IP limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from musicstudio import ids
from musicstudio.api.routes import shares as share_routes
from musicstudio.db.tables import collection_tracks, collections, share_links, tracks
from musicstudio.services.context import ServiceContext
from musicstudio.services.ratelimit import TokenBucketLimiter
from tests.api.test_tracks import T0, TRACK_FIELDS, _listed, _track
from tests.conftest import Caller
from tests.helpers import assert_error, error_fields, local_path, without_request_ids

LINK_FIELDS = {"id", "token", "url", "target_type", "visibility", "expires_at", "created_at"}
RESOLVE_FIELDS = {"kind", "available", "message", "share", "track", "collection", "tracks"}
LICENCE = {
    "licence_class": "unclear",
    "licence_version": "test",
    "commercial_use": False,
    "requires_attribution": True,
}


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def _share(
    client: httpx.AsyncClient, caller: Caller, target: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    """``target`` is ``/tracks/<id>`` or ``/collections/<id>``."""
    return await client.post(caller.path(f"{target}/share"), json=body, headers=caller.headers)


async def _token(
    client: httpx.AsyncClient, caller: Caller, target: str, body: dict[str, Any] | None = None
) -> str:
    response = await _share(client, caller, target, body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def _playable_track(ctx: ServiceContext, owner: Caller, tmp_path: Path) -> str:
    """A track whose master and one stem exist in storage, so signed URLs can be fetched."""
    track_id = await _track(ctx, owner, saved_at=T0)
    master, stem = tmp_path / "master.mp3", tmp_path / "bass.flac"
    master.write_bytes(b"ID3-master")
    stem.write_bytes(b"fLaC-bass")
    master_key = f"tracks/{owner.org_id}/{track_id}.mp3"
    stem_key = f"tracks/{owner.org_id}/{track_id}/bass.flac"
    ctx.storage.put_file(master_key, master, "audio/mpeg")
    ctx.storage.put_file(stem_key, stem, "audio/flac")
    stems = {"bass": {"storage_key": stem_key, "mime_type": "audio/flac", "size_bytes": 9}}
    async with ctx.db.write() as conn:
        await conn.execute(update(tracks).where(tracks.c.id == track_id).values(stems=stems))
    return track_id


async def _collection(ctx: ServiceContext, owner: Caller, placed: list[tuple[str, int]]) -> str:
    """A collection of ``owner`` holding each track at its position."""
    collection_id = ids.new_id(ids.COLLECTION)
    async with ctx.db.write() as conn:
        await conn.execute(
            insert(collections).values(
                id=collection_id,
                org_id=owner.org_id,
                user_id=owner.user_id,
                name="Deep work",
                description="Mornings",
                cover_image_url="https://example.com/cover.png",
                created_at=T0,
                updated_at=T0,
            )
        )
        for track_id, position in placed:
            await conn.execute(
                insert(collection_tracks).values(
                    collection_id=collection_id, track_id=track_id, position=position, added_at=T0
                )
            )
    return collection_id


async def _soft_delete(ctx: ServiceContext, table: Any, object_id: str) -> None:
    async with ctx.db.write() as conn:
        await conn.execute(
            update(table).where(table.c.id == object_id).values(deleted_at=datetime.now(UTC))
        )


async def test_creating_a_track_share_returns_the_token_once_with_its_url(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)

    response = await _share(client, alice, f"/tracks/{track_id}")

    assert response.status_code == 201, response.text
    link = response.json()
    assert set(link) == LINK_FIELDS
    assert ids.is_valid(link["id"], ids.SHARE_LINK)
    assert link["token"].startswith("shr_") and len(link["token"]) >= 4 + 32
    assert link["url"] == f"http://testserver/v1/music/shared/{link['token']}"
    assert (link["target_type"], link["visibility"], link["expires_at"]) == (
        "track",
        "link_only",
        None,
    )
    assert abs(_at(link["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)

    public = await _share(client, alice, f"/tracks/{track_id}", {"visibility": "public"})
    assert public.status_code == 201 and public.json()["visibility"] == "public"
    assert public.json()["token"] != link["token"], "every link has its own token"
    wrong = await _share(client, alice, f"/tracks/{track_id}", {"visibility": "everyone"})
    assert_error(wrong, 422, "VALIDATION_ERROR")
    assert error_fields(wrong) == ["visibility"]


async def test_only_the_tokens_keyed_hash_is_stored(
    client: httpx.AsyncClient, ctx: ServiceContext, settings: Any, alice: Caller
) -> None:
    token = await _token(client, alice, f"/tracks/{await _track(ctx, alice, saved_at=T0)}")

    async with ctx.db.read() as conn:
        rows = [dict(row._mapping) for row in await conn.execute(select(share_links))]
    [row] = rows
    assert row["token_hash"] == ctx.hasher.hash(token)
    assert all(token not in str(value) for value in row.values())
    if ctx.db.is_sqlite:
        database = settings.data_dir / "musicstudio.db"
        stored = b"".join(
            path.read_bytes()
            for path in (database, database.with_name(database.name + "-wal"))
            if path.exists()
        )
        assert token.encode() not in stored
        assert ctx.hasher.hash(token).encode() in stored


async def test_expiry_is_at_least_one_day_and_clamped_to_ninety(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    target = f"/tracks/{await _track(ctx, alice, saved_at=T0)}"
    for bad in (0, -3, 1.5, "7", True):
        response = await _share(client, alice, target, {"expires_in_days": bad})
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == ["expires_in_days"], bad

    for days, expected in ((1, 1), (90, 90), (500, 90)):
        link = (await _share(client, alice, target, {"expires_in_days": days})).json()
        lifetime = _at(link["expires_at"]) - _at(link["created_at"])
        assert lifetime == timedelta(days=expected), days
    never = await _share(client, alice, target, {"expires_in_days": None})
    assert never.status_code == 201 and never.json()["expires_at"] is None


async def test_only_the_creator_or_owner_can_share(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    mine = await _track(ctx, alice, saved_at=T0)
    saved = await _track(ctx, bob, saved_at=T0, reader=alice)  # in Alice's library, not hers
    collection = await _collection(ctx, alice, [(mine, 0)])

    for target in (f"/tracks/{mine}", f"/collections/{collection}"):
        assert_error(await _share(client, bob, target), 404, "RESOURCE_NOT_FOUND")
        assert_error(await _share(client, carol, target), 404, "RESOURCE_NOT_FOUND")
        wrong_org = await client.post(alice.path(f"{target}/share"), headers=carol.headers)
        assert_error(wrong_org, 403, "ORGANIZATION_ACCESS_DENIED")
    assert_error(await _share(client, alice, f"/tracks/{saved}"), 404, "RESOURCE_NOT_FOUND")
    missing = await _share(client, alice, f"/tracks/{ids.new_id(ids.TRACK)}")
    other_users = await _share(client, bob, f"/tracks/{mine}")
    assert without_request_ids(missing) == without_request_ids(other_users)

    await _soft_delete(ctx, tracks, mine)
    await _soft_delete(ctx, collections, collection)
    assert_error(await _share(client, alice, f"/tracks/{mine}"), 404, "RESOURCE_NOT_FOUND")
    deleted = await _share(client, alice, f"/collections/{collection}")
    assert_error(deleted, 404, "RESOURCE_NOT_FOUND")


async def test_anyone_resolves_a_track_share_with_fresh_urls_and_its_licence(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, tmp_path: Path
) -> None:
    track_id = await _playable_track(ctx, alice, tmp_path)
    token = await _token(client, alice, f"/tracks/{track_id}", {"expires_in_days": 7})

    response = await client.get(f"/v1/music/shared/{token}")  # no credentials

    assert response.status_code == 200, response.text
    shared = response.json()
    assert set(shared) == RESOLVE_FIELDS
    assert (shared["kind"], shared["available"], shared["message"]) == ("track", True, None)
    assert shared["share"]["target_type"] == "track"
    assert shared["share"]["visibility"] == "link_only"
    assert shared["share"]["expires_at"].endswith("Z")
    assert shared["collection"] is None and shared["tracks"] is None
    track = shared["track"]
    assert set(track) == TRACK_FIELDS | {"licence"}
    assert track["id"] == track_id and track["licence"] == LICENCE
    assert "recipe" not in track and "midi_url" not in track
    master = await client.get(local_path(track["playback_url"]))
    assert master.status_code == 200 and master.content == b"ID3-master"
    stem = await client.get(local_path(track["stem_urls"]["bass"]))
    assert stem.status_code == 200 and stem.content == b"fLaC-bass"


async def test_a_collection_share_lists_its_live_tracks_in_position_order(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller
) -> None:
    first = await _track(ctx, alice, saved_at=T0)
    second = await _track(ctx, alice, saved_at=T0)
    removed = await _track(ctx, alice, saved_at=T0)
    from_bob = await _track(ctx, bob, saved_at=T0, reader=alice)
    collection = await _collection(
        ctx, alice, [(second, 1), (removed, 2), (from_bob, 3), (first, 0)]
    )
    await _soft_delete(ctx, tracks, removed)
    token = await _token(client, alice, f"/collections/{collection}")

    shared = (await client.get(f"/v1/music/shared/{token}")).json()

    assert (shared["kind"], shared["available"], shared["track"]) == ("collection", True, None)
    assert shared["collection"] == {
        "id": collection,
        "name": "Deep work",
        "description": "Mornings",
        "cover_image_url": "https://example.com/cover.png",
        "track_count": 3,
        "created_at": "2026-06-01T12:00:00Z",
        "updated_at": "2026-06-01T12:00:00Z",
    }
    assert [t["id"] for t in shared["tracks"]] == [first, second, from_bob]
    for track in shared["tracks"]:
        assert track["playback_url"] and track["licence"] == LICENCE


async def test_removed_content_resolves_as_unavailable(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)
    collection = await _collection(ctx, alice, [(track_id, 0)])
    track_token = await _token(client, alice, f"/tracks/{track_id}")
    collection_token = await _token(client, alice, f"/collections/{collection}")

    await _soft_delete(ctx, tracks, track_id)
    await _soft_delete(ctx, collections, collection)

    for token, kind in ((track_token, "track"), (collection_token, "collection")):
        response = await client.get(f"/v1/music/shared/{token}")
        assert response.status_code == 200, response.text
        shared = response.json()
        assert (shared["kind"], shared["available"]) == (kind, False)
        assert kind in shared["message"] and "removed" in shared["message"]
        assert (shared["track"], shared["collection"], shared["tracks"]) == (None, None, None)


async def test_unknown_revoked_and_expired_tokens_answer_the_same_404(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)
    revoked = (await _share(client, alice, f"/tracks/{track_id}")).json()
    expiring = (await _share(client, alice, f"/tracks/{track_id}", {"expires_in_days": 1})).json()
    assert (await client.get(f"/v1/music/shared/{expiring['token']}")).status_code == 200

    revoke = await client.delete(alice.path(f"/share/{revoked['id']}"), headers=alice.headers)
    assert revoke.status_code == 200
    async with ctx.db.write() as conn:
        await conn.execute(
            update(share_links)
            .where(share_links.c.id == expiring["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    unknown = await client.get("/v1/music/shared/shr_" + "x" * 43)
    assert_error(unknown, 404, "RESOURCE_NOT_FOUND")
    for token in (revoked["token"], expiring["token"], "not-a-token"):
        response = await client.get(f"/v1/music/shared/{token}")
        assert_error(response, 404, "RESOURCE_NOT_FOUND")
        assert without_request_ids(response) == without_request_ids(unknown), token


async def test_saving_a_shared_track_adds_it_to_the_savers_library_once(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)
    link = (await _share(client, alice, f"/tracks/{track_id}")).json()
    save = f"/v1/music/shared/{link['token']}/save"
    assert_error(
        await client.get(bob.path(f"/tracks/{track_id}"), headers=bob.headers),
        404,
        "RESOURCE_NOT_FOUND",
    )

    response = await client.post(save, headers=bob.headers)

    assert response.status_code == 201, response.text
    entry = response.json()
    assert set(entry) == {"id", "track_id", "source", "share_link_id", "created_at"}
    assert ids.is_valid(entry["id"], ids.LIBRARY_ENTRY)
    assert (entry["track_id"], entry["source"], entry["share_link_id"]) == (
        track_id,
        "shared",
        link["id"],
    )
    assert entry["created_at"].endswith("Z") and len(entry["created_at"]) == 20
    readable = await client.get(bob.path(f"/tracks/{track_id}"), headers=bob.headers)
    assert readable.status_code == 200 and readable.json()["playback_url"]
    assert await _listed(client, bob) == [track_id]

    again = await client.post(save, headers={"Authorization": f"Bearer {bob.api_key}"})
    assert again.status_code == 200 and again.json() == entry
    assert await _listed(client, bob) == [track_id]

    # Another organization's user saves into their own organization's library.
    other_org = await client.post(save, headers=carol.headers)
    assert other_org.status_code == 201
    assert (await client.get(carol.path(f"/tracks/{track_id}"), headers=carol.headers)).is_success

    # The creator saving their own track gets the entry they already have.
    own = await client.post(save, headers=alice.headers)
    assert own.status_code == 200 and own.json()["source"] == "generated"

    assert_error(await client.post(save), 401, "AUTHENTICATION_REQUIRED")


async def test_collection_shares_and_removed_tracks_cannot_be_saved(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)
    collection = await _collection(ctx, alice, [(track_id, 0)])
    collection_token = await _token(client, alice, f"/collections/{collection}")
    track_token = await _token(client, alice, f"/tracks/{track_id}")

    refused = await client.post(f"/v1/music/shared/{collection_token}/save", headers=bob.headers)
    assert_error(refused, 422, "VALIDATION_ERROR")
    assert "collection" in refused.json()["error"]["message"]

    await _soft_delete(ctx, tracks, track_id)
    removed = await client.post(f"/v1/music/shared/{track_token}/save", headers=bob.headers)
    assert_error(removed, 404, "RESOURCE_NOT_FOUND")
    unknown = await client.post("/v1/music/shared/shr_nothing/save", headers=bob.headers)
    assert_error(unknown, 404, "RESOURCE_NOT_FOUND")
    assert await _listed(client, bob) == []


async def test_revoking_is_owner_only_idempotent_and_keeps_saved_copies(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)
    link = (await _share(client, alice, f"/tracks/{track_id}")).json()
    save = f"/v1/music/shared/{link['token']}/save"
    assert (await client.post(save, headers=bob.headers)).status_code == 201

    by_bob = await client.delete(bob.path(f"/share/{link['id']}"), headers=bob.headers)
    assert_error(by_bob, 404, "RESOURCE_NOT_FOUND")
    missing = await client.delete(
        alice.path(f"/share/{ids.new_id(ids.SHARE_LINK)}"), headers=alice.headers
    )
    assert without_request_ids(by_bob) == without_request_ids(missing)
    by_carol = await client.delete(carol.path(f"/share/{link['id']}"), headers=carol.headers)
    assert_error(by_carol, 404, "RESOURCE_NOT_FOUND")
    assert (await client.get(f"/v1/music/shared/{link['token']}")).status_code == 200

    for _ in range(2):
        revoked = await client.delete(alice.path(f"/share/{link['id']}"), headers=alice.headers)
        assert revoked.status_code == 200
        assert revoked.json() == {
            "success": True,
            "id": link["id"],
            "detail": "Share link revoked.",
        }

    assert_error(await client.get(f"/v1/music/shared/{link['token']}"), 404, "RESOURCE_NOT_FOUND")
    assert_error(await client.post(save, headers=carol.headers), 404, "RESOURCE_NOT_FOUND")
    assert await _listed(client, bob) == [track_id], "the saved copy stays"
    assert (await client.get(bob.path(f"/tracks/{track_id}"), headers=bob.headers)).is_success


async def test_the_public_paths_are_not_taken_for_an_organization(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    token = await _token(client, alice, f"/tracks/{await _track(ctx, alice, saved_at=T0)}")

    assert (await client.get(f"/v1/music/shared/{token}")).status_code == 200
    # With the org routes first these would answer 401/403 for an organization "shared".
    assert_error(await client.get("/v1/music/shared/tracks"), 404, "RESOURCE_NOT_FOUND")
    assert_error(
        await client.get("/v1/music/shared/collections", headers=alice.headers),
        404,
        "RESOURCE_NOT_FOUND",
    )
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/v1/music/shared/{token}",
        "/v1/music/shared/{token}/save",
        "/v1/music/{organization_id}/tracks/{track_id}/share",
        "/v1/music/{organization_id}/collections/{collection_id}/share",
        "/v1/music/{organization_id}/share/{share_id}",
    } <= set(paths)
    assert "security" not in paths["/v1/music/shared/{token}"]["get"]


async def test_resolves_are_rate_limited_per_client_ip(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(share_routes, "RESOLVE_BURST", 3)
    monkeypatch.setattr(share_routes, "RESOLVE_PER_MINUTE", 6)  # one token every 10 s
    token = await _token(client, alice, f"/tracks/{await _track(ctx, alice, saved_at=T0)}")

    answers = [(await client.get(f"/v1/music/shared/{token}")).status_code for _ in range(3)]
    limited = await client.get(f"/v1/music/shared/{token}")

    assert answers == [200, 200, 200]
    assert_error(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    # Unknown tokens spend the same budget (guessing is what the limit is for).
    assert_error(await client.get("/v1/music/shared/shr_guess"), 429, "RATE_LIMITED")
    # Authenticated routes are not limited by it.
    assert (await client.post(f"/v1/music/shared/{token}/save", headers=alice.headers)).is_success


def test_the_bucket_refills_over_time_and_keys_are_separate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(per_minute=60, burst=2, clock=lambda: now[0])

    assert [limiter.acquire("a"), limiter.acquire("a")] == [None, None]
    assert limiter.acquire("a") == 1
    assert limiter.acquire("b") is None, "another address has its own bucket"
    now[0] = 0.5
    assert limiter.acquire("a") == 1
    now[0] = 1.0
    assert limiter.acquire("a") is None
    now[0] = 100.0
    assert [limiter.acquire("a"), limiter.acquire("a"), limiter.acquire("a")] == [None, None, 1]


def test_the_bucket_table_stays_bounded() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(per_minute=60, burst=5, max_keys=100, clock=lambda: now[0])
    for n in range(1000):
        now[0] = n / 1000
        limiter.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._buckets) <= 100
