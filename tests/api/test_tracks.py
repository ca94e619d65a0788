"""Tracks and the library: list (newest save first, filters), one track with fresh URLs for
the master, stems and MIDI, and delete by the creator only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from musicstudio import ids
from musicstudio.db.tables import collection_tracks, collections, library_entries, tracks
from musicstudio.services.context import ServiceContext
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import (
    assert_error,
    error_fields,
    job_body,
    local_path,
    track_values,
    without_request_ids,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TRACK_FIELDS = {
    "id",
    "title",
    "engine",
    "mode",
    "measured_duration_seconds",
    "instrumental",
    "licence_class",
    "created_at",
    "playback_url",
    "stem_urls",
}


async def _track(
    ctx: ServiceContext,
    owner: Caller,
    *,
    saved_at: datetime,
    mode: str = "creation",
    engine: str = "studio",
    reader: Caller | None = None,
) -> str:
    """A track row made by ``owner``, in their library (and in ``reader``'s, as shared)."""
    track_id = ids.new_id(ids.TRACK)
    async with ctx.db.write() as conn:
        await conn.execute(
            insert(tracks).values(
                **track_values(
                    track_id,
                    owner.org_id,
                    owner.user_id,
                    saved_at,
                    title=f"track {track_id[-4:]}",
                    engine=engine,
                    mode=mode,
                    recipe={"seed": 1},
                )
            )
        )
        for who, source in ((owner, "generated"), (reader, "shared")):
            if who is not None:
                await conn.execute(
                    insert(library_entries).values(
                        id=ids.new_id(ids.LIBRARY_ENTRY),
                        org_id=who.org_id,
                        user_id=who.user_id,
                        track_id=track_id,
                        source=source,
                        created_at=saved_at,
                    )
                )
    return track_id


async def _listed(client: httpx.AsyncClient, caller: Caller, query: str = "") -> list[str]:
    response = await client.get(caller.path(f"/tracks{query}"), headers=caller.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_a_generated_track_is_in_the_library_with_urls_for_master_stems_and_midi(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    created = await client.post(
        alice.path("/generations"), json=job_body(duration_seconds=2), headers=alice.headers
    )
    assert await Worker(ctx).run_once()
    job = (
        await client.get(alice.path(f"/generations/{created.json()['id']}"), headers=alice.headers)
    ).json()

    page = (await client.get(alice.path("/tracks"), headers=alice.headers)).json()
    assert (page["limit"], page["offset"]) == (50, 0)
    [item] = page["items"]
    assert set(item) == TRACK_FIELDS
    assert item["id"] == job["result_track_id"]
    assert item["playback_url"] is None and item["stem_urls"] is None, "no URLs in lists"

    response = await client.get(alice.path(f"/tracks/{item['id']}"), headers=alice.headers)
    assert response.status_code == 200
    track = response.json()
    assert set(track) == TRACK_FIELDS | {"midi_url", "recipe"}
    assert {k: track[k] for k in TRACK_FIELDS - {"playback_url", "stem_urls"}} == {
        k: item[k] for k in TRACK_FIELDS - {"playback_url", "stem_urls"}
    }
    assert track["recipe"]["engine"] == "studio"
    master = await client.get(local_path(track["playback_url"]))
    assert master.status_code == 200 and master.headers["content-type"] == "audio/mpeg"
    assert track["stem_urls"] and {"drums", "bass"} <= set(track["stem_urls"])
    for name, url in track["stem_urls"].items():
        stem = await client.get(local_path(url))
        assert stem.status_code == 200 and stem.content[:4] == b"fLaC", name
    midi = await client.get(local_path(track["midi_url"]))
    assert midi.status_code == 200 and midi.content[:4] == b"MThd"


async def test_library_is_newest_save_first_filtered_and_paginated(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller
) -> None:
    old = await _track(ctx, alice, saved_at=T0)
    focus = await _track(ctx, alice, saved_at=T0 + timedelta(minutes=1), mode="focus")
    other_engine = await _track(ctx, alice, saved_at=T0 + timedelta(minutes=2), engine="x")
    shared = await _track(ctx, bob, saved_at=T0 + timedelta(minutes=3), reader=alice)
    await _track(ctx, bob, saved_at=T0 + timedelta(minutes=4))  # bob's own: not alice's
    assert await _listed(client, alice) == [shared, other_engine, focus, old]
    assert await _listed(client, alice, "?mode=focus") == [focus]
    assert await _listed(client, alice, "?engine=studio") == [shared, focus, old]
    assert await _listed(client, alice, "?limit=2&offset=1") == [other_engine, focus]

    collection_id = ids.new_id(ids.COLLECTION)
    async with ctx.db.write() as conn:
        await conn.execute(
            insert(collections).values(
                id=collection_id,
                org_id=alice.org_id,
                user_id=alice.user_id,
                name="mine",
                created_at=T0,
                updated_at=T0,
            )
        )
        for position, track_id in enumerate((old, shared)):
            await conn.execute(
                insert(collection_tracks).values(
                    collection_id=collection_id, track_id=track_id, position=position, added_at=T0
                )
            )
    assert await _listed(client, alice, f"?collection_id={collection_id}") == [shared, old]
    foreign = await client.get(
        bob.path(f"/tracks?collection_id={collection_id}"), headers=bob.headers
    )
    assert_error(foreign, 404, "RESOURCE_NOT_FOUND")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        ("mode=remix", "mode"),
        ("engine=" + "e" * 65, "engine"),
    ],
)
async def test_bad_library_params_are_422(
    client: httpx.AsyncClient, alice: Caller, query: str, field: str
) -> None:
    response = await client.get(alice.path(f"/tracks?{query}"), headers=alice.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == [field]


async def test_only_the_creator_deletes_and_the_track_leaves_every_library(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0, reader=bob)
    assert await _listed(client, bob) == [track_id]
    by_reader = await client.delete(alice.path(f"/tracks/{track_id}"), headers=bob.headers)
    assert_error(by_reader, 403, "INSUFFICIENT_PERMISSIONS")

    deleted = await client.delete(alice.path(f"/tracks/{track_id}"), headers=alice.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "id": track_id, "detail": "Track deleted."}
    for caller in (alice, bob):
        assert await _listed(client, caller) == []
        gone = await client.get(caller.path(f"/tracks/{track_id}"), headers=caller.headers)
        assert_error(gone, 404, "RESOURCE_NOT_FOUND")
    again = await client.delete(alice.path(f"/tracks/{track_id}"), headers=alice.headers)
    assert_error(again, 404, "RESOURCE_NOT_FOUND")


async def test_other_users_and_organizations_see_a_missing_track(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    track_id = await _track(ctx, alice, saved_at=T0)
    missing = ids.new_id(ids.TRACK)
    for method in ("GET", "DELETE"):
        for caller in (bob, carol):  # each on their own organization's path
            theirs = await client.request(
                method, caller.path(f"/tracks/{track_id}"), headers=caller.headers
            )
            nothing = await client.request(
                method, caller.path(f"/tracks/{missing}"), headers=caller.headers
            )
            assert_error(theirs, 404, "RESOURCE_NOT_FOUND")
            assert (theirs.status_code, without_request_ids(theirs)) == (
                nothing.status_code,
                without_request_ids(nothing),
            ), (method, caller)
        on_victim_path = await client.request(
            method, alice.path(f"/tracks/{track_id}"), headers=carol.headers
        )
        assert_error(on_victim_path, 403, "ORGANIZATION_ACCESS_DENIED")
    assert await _listed(client, alice) == [track_id], "nothing was deleted"
