"""/collections: create, list, get, update, delete; their tracks: list, add, remove, reorder."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import insert, update

from musicstudio import ids
from musicstudio.clock import utcnow
from musicstudio.db.tables import library_entries, tracks
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import assert_error, error_fields, track_values, without_request_ids

COLLECTION_FIELDS = {
    "id",
    "name",
    "description",
    "cover_track_id",
    "cover_image_url",
    "track_count",
    "created_at",
    "updated_at",
}
WHOLE_SECONDS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MISSING_COLLECTION = "mcoll_01jzzzzzzzzzzzzzzzzzzzzzzz"


async def insert_track(ctx: ServiceContext, owner: Caller, title: str = "a track") -> str:
    """A finished track of ``owner``'s, in their library, written straight to the store."""
    track_id = ids.new_id(ids.TRACK)
    now = utcnow()
    async with ctx.db.write() as conn:
        await conn.execute(
            insert(tracks).values(
                **track_values(track_id, owner.org_id, owner.user_id, now, title=title)
            )
        )
    await save_to_library(ctx, owner, track_id, source="generated")
    return track_id


async def save_to_library(
    ctx: ServiceContext, caller: Caller, track_id: str, source: str = "shared"
) -> None:
    """A library entry for ``caller`` in their own organization."""
    async with ctx.db.write() as conn:
        await conn.execute(
            insert(library_entries).values(
                id=ids.new_id(ids.LIBRARY_ENTRY),
                org_id=caller.org_id,
                user_id=caller.user_id,
                track_id=track_id,
                source=source,
                created_at=utcnow(),
            )
        )


async def soft_delete_track(ctx: ServiceContext, track_id: str) -> None:
    async with ctx.db.write() as conn:
        await conn.execute(
            update(tracks).where(tracks.c.id == track_id).values(deleted_at=utcnow())
        )


async def create(client: httpx.AsyncClient, caller: Caller, **body: Any) -> dict[str, Any]:
    response = await client.post(
        caller.path("/collections"), json={"name": "Focus", **body}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add(
    client: httpx.AsyncClient, caller: Caller, collection_id: str, track_id: str
) -> httpx.Response:
    return await client.post(
        caller.path(f"/collections/{collection_id}/tracks"),
        json={"track_id": track_id},
        headers=caller.headers,
    )


async def listed_tracks(
    client: httpx.AsyncClient, caller: Caller, collection_id: str, query: str = ""
) -> list[dict[str, Any]]:
    response = await client.get(
        caller.path(f"/collections/{collection_id}/tracks{query}"), headers=caller.headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# ---------------------------------------------------------------- collections themselves


async def test_create_returns_201_with_the_collection(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    cover = await insert_track(ctx, alice)
    response = await client.post(
        alice.path("/collections"),
        json={
            "name": "  Deep work  ",
            "description": "For mornings",
            "cover_track_id": cover,
            "cover_image_url": "https://example.com/cover.png",
            "unknown_field": "ignored",
        },
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == COLLECTION_FIELDS
    assert ids.is_valid(body["id"], ids.COLLECTION)
    assert body["name"] == "Deep work"
    assert body["description"] == "For mornings"
    assert body["cover_track_id"] == cover
    assert body["cover_image_url"] == "https://example.com/cover.png"
    assert body["track_count"] == 0
    assert WHOLE_SECONDS_Z.fullmatch(body["created_at"])
    assert body["updated_at"] == body["created_at"]

    minimal = await create(client, alice, name="x" * 512)
    assert minimal["description"] is None and minimal["cover_track_id"] is None
    assert minimal["cover_image_url"] is None


async def test_create_rejects_invalid_fields_with_every_error(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    path, headers = alice.path("/collections"), alice.headers
    missing = await client.post(path, json={}, headers=headers)
    assert_error(missing, 422, "VALIDATION_ERROR")
    assert error_fields(missing) == ["name"]
    for name in ("", "   ", "x" * 513, None, 5):
        bad = await client.post(path, json={"name": name}, headers=headers)
        assert_error(bad, 422, "VALIDATION_ERROR")
        assert error_fields(bad) == ["name"]
    both = await client.post(
        path, json={"name": "", "cover_image_url": "u" * 1025}, headers=headers
    )
    assert_error(both, 422, "VALIDATION_ERROR")
    assert sorted(error_fields(both)) == ["cover_image_url", "name"]


async def test_cover_track_must_be_a_readable_track_of_this_organization(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller, ctx: ServiceContext
) -> None:
    bobs = await insert_track(ctx, bob)
    carols = await insert_track(ctx, carol)
    for cover in (bobs, carols, "mtrack_01jzzzzzzzzzzzzzzzzzzzzzzz"):
        response = await client.post(
            alice.path("/collections"),
            json={"name": "n", "cover_track_id": cover},
            headers=alice.headers,
        )
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == ["cover_track_id"]

    collection = await create(client, alice)
    patched = await client.patch(
        alice.path(f"/collections/{collection['id']}"),
        json={"cover_track_id": bobs},
        headers=alice.headers,
    )
    assert_error(patched, 422, "VALIDATION_ERROR")
    assert error_fields(patched) == ["cover_track_id"]
    # Once Bob's track is in Alice's library she can read it, so it can be her cover.
    await save_to_library(ctx, alice, bobs)
    patched = await client.patch(
        alice.path(f"/collections/{collection['id']}"),
        json={"cover_track_id": bobs},
        headers=alice.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["cover_track_id"] == bobs


async def test_list_is_newest_first_paginated_without_track_counts(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, ctx: ServiceContext
) -> None:
    made = [(await create(client, alice, name=f"c{i}"))["id"] for i in range(5)]
    await create(client, bob, name="bob's")
    track = await insert_track(ctx, alice)
    assert (await add(client, alice, made[0], track)).status_code == 201

    response = await client.get(alice.path("/collections"), headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "limit", "offset"}
    assert (body["limit"], body["offset"]) == (50, 0)
    assert [c["id"] for c in body["items"]] == made[::-1]
    for item in body["items"]:
        assert set(item) == COLLECTION_FIELDS
        assert item["track_count"] is None

    page = await client.get(alice.path("/collections?limit=2&offset=1"), headers=alice.headers)
    assert page.json()["limit"] == 2 and page.json()["offset"] == 1
    assert [c["id"] for c in page.json()["items"]] == made[::-1][1:3]
    beyond = await client.get(alice.path("/collections?offset=5"), headers=alice.headers)
    assert beyond.json()["items"] == []
    widest = await client.get(alice.path("/collections?limit=100"), headers=alice.headers)
    assert widest.status_code == 200


async def test_list_rejects_out_of_range_queries(client: httpx.AsyncClient, alice: Caller) -> None:
    for query, field in (
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
    ):
        response = await client.get(alice.path(f"/collections?{query}"), headers=alice.headers)
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == [field]
    both = await client.get(alice.path("/collections?limit=0&offset=-1"), headers=alice.headers)
    assert sorted(error_fields(both)) == ["limit", "offset"]


async def test_get_and_patch_count_live_tracks(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    collection = await create(client, alice)
    path = alice.path(f"/collections/{collection['id']}")
    first, second = await insert_track(ctx, alice), await insert_track(ctx, alice)
    for track in (first, second):
        assert (await add(client, alice, collection["id"], track)).status_code == 201

    got = await client.get(path, headers=alice.headers)
    assert got.status_code == 200
    assert set(got.json()) == COLLECTION_FIELDS
    assert got.json()["track_count"] == 2
    patched = await client.patch(path, json={"name": "Renamed"}, headers=alice.headers)
    assert patched.json()["track_count"] == 2

    await soft_delete_track(ctx, second)
    assert (await client.get(path, headers=alice.headers)).json()["track_count"] == 1


async def test_patch_is_partial_and_an_explicit_null_clears(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    cover = await insert_track(ctx, alice)
    collection = await create(
        client,
        alice,
        name="Before",
        description="words",
        cover_track_id=cover,
        cover_image_url="https://example.com/a.png",
    )
    path = alice.path(f"/collections/{collection['id']}")

    renamed = await client.patch(path, json={"name": "After"}, headers=alice.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() | {"name": "Before", "updated_at": None} == collection | {
        "updated_at": None
    }
    assert renamed.json()["updated_at"] >= collection["created_at"]

    cleared = await client.patch(
        path, json={"description": None, "cover_track_id": None}, headers=alice.headers
    )
    body = cleared.json()
    assert body["description"] is None and body["cover_track_id"] is None
    assert body["name"] == "After"
    assert body["cover_image_url"] == "https://example.com/a.png"
    assert (await client.get(path, headers=alice.headers)).json() == body

    unchanged = await client.patch(path, json={}, headers=alice.headers)
    assert unchanged.json() == body


async def test_patch_cannot_clear_or_empty_the_name(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    collection = await create(client, alice, name="Keep")
    path = alice.path(f"/collections/{collection['id']}")
    for name in (None, "", "  ", "x" * 513):
        response = await client.patch(path, json={"name": name}, headers=alice.headers)
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == ["name"]
    assert (await client.get(path, headers=alice.headers)).json()["name"] == "Keep"


async def test_delete_acknowledges_then_the_collection_is_gone(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    kept = await create(client, alice, name="kept")
    doomed = await create(client, alice, name="doomed")
    path = alice.path(f"/collections/{doomed['id']}")

    response = await client.delete(path, headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {"success": True, "id": doomed["id"], "detail": "Collection deleted."}

    assert_error(await client.delete(path, headers=alice.headers), 404, "RESOURCE_NOT_FOUND")
    assert_error(await client.get(path, headers=alice.headers), 404, "RESOURCE_NOT_FOUND")
    patched = await client.patch(path, json={"name": "x"}, headers=alice.headers)
    assert_error(patched, 404, "RESOURCE_NOT_FOUND")
    tracks_of = await client.get(f"{path}/tracks", headers=alice.headers)
    assert_error(tracks_of, 404, "RESOURCE_NOT_FOUND")
    listed = await client.get(alice.path("/collections"), headers=alice.headers)
    assert [c["id"] for c in listed.json()["items"]] == [kept["id"]]


# ---------------------------------------------------------------- a collection's tracks


async def test_add_appends_and_is_idempotent(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    collection_id = (await create(client, alice))["id"]
    first, second = await insert_track(ctx, alice), await insert_track(ctx, alice)

    added = await add(client, alice, collection_id, first)
    assert added.status_code == 201
    entry = added.json()
    assert set(entry) == {"collection_id", "track_id", "position", "added_at"}
    assert entry["collection_id"] == collection_id and entry["track_id"] == first
    assert entry["position"] == 0
    assert WHOLE_SECONDS_Z.fullmatch(entry["added_at"])
    assert (await add(client, alice, collection_id, second)).json()["position"] == 1

    again = await add(client, alice, collection_id, first)
    assert again.status_code == 200, "already there: success, neither duplicated nor moved"
    assert again.json() == entry
    assert [t["track_id"] for t in await listed_tracks(client, alice, collection_id)] == [
        first,
        second,
    ]
    got = await client.get(alice.path(f"/collections/{collection_id}"), headers=alice.headers)
    assert got.json()["track_count"] == 2


async def test_add_accepts_a_track_saved_to_the_callers_library(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, ctx: ServiceContext
) -> None:
    bobs = await insert_track(ctx, bob)
    await save_to_library(ctx, alice, bobs)
    collection_id = (await create(client, alice))["id"]
    assert (await add(client, alice, collection_id, bobs)).status_code == 201


async def test_add_of_a_track_the_caller_cannot_use_is_404(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller, ctx: ServiceContext
) -> None:
    collection_id = (await create(client, alice))["id"]
    bobs = await insert_track(ctx, bob)  # same organization, not in Alice's library
    carols = await insert_track(ctx, carol)  # another organization
    # Even in Alice's library, a track of another organization cannot join her collection.
    foreign_saved = await insert_track(ctx, carol)
    await save_to_library(ctx, alice, foreign_saved)
    deleted = await insert_track(ctx, alice)
    await soft_delete_track(ctx, deleted)

    unknown = await add(client, alice, collection_id, "mtrack_01jzzzzzzzzzzzzzzzzzzzzzzz")
    assert_error(unknown, 404, "RESOURCE_NOT_FOUND")
    for track in (bobs, carols, foreign_saved, deleted):
        response = await add(client, alice, collection_id, track)
        assert_error(response, 404, "RESOURCE_NOT_FOUND")
        assert without_request_ids(response) == without_request_ids(unknown)
    assert await listed_tracks(client, alice, collection_id) == []

    invalid = await client.post(
        alice.path(f"/collections/{collection_id}/tracks"), json={}, headers=alice.headers
    )
    assert_error(invalid, 422, "VALIDATION_ERROR")
    assert error_fields(invalid) == ["track_id"]


async def test_tracks_are_listed_by_position_and_paginated(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    collection_id = (await create(client, alice))["id"]
    made = [await insert_track(ctx, alice) for _ in range(4)]
    for track in made:
        await add(client, alice, collection_id, track)

    response = await client.get(
        alice.path(f"/collections/{collection_id}/tracks"), headers=alice.headers
    )
    body = response.json()
    assert set(body) == {"collection_id", "items", "limit", "offset"}
    assert body["collection_id"] == collection_id
    assert (body["limit"], body["offset"]) == (200, 0)
    assert [(t["track_id"], t["position"]) for t in body["items"]] == [
        (track, i) for i, track in enumerate(made)
    ]
    for item in body["items"]:
        assert set(item) == {"track_id", "position", "added_at"}
        assert WHOLE_SECONDS_Z.fullmatch(item["added_at"])

    page = await listed_tracks(client, alice, collection_id, "?limit=2&offset=1")
    assert [t["track_id"] for t in page] == made[1:3]
    assert len(await listed_tracks(client, alice, collection_id, "?limit=500")) == 4
    for query, field in (("limit=501", "limit"), ("limit=0", "limit"), ("offset=-1", "offset")):
        bad = await client.get(
            alice.path(f"/collections/{collection_id}/tracks?{query}"), headers=alice.headers
        )
        assert_error(bad, 422, "VALIDATION_ERROR")
        assert error_fields(bad) == [field]


async def test_soft_deleted_tracks_are_not_listed(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    collection_id = (await create(client, alice))["id"]
    kept, gone = await insert_track(ctx, alice), await insert_track(ctx, alice)
    for track in (gone, kept):
        await add(client, alice, collection_id, track)
    await soft_delete_track(ctx, gone)
    assert [t["track_id"] for t in await listed_tracks(client, alice, collection_id)] == [kept]


async def test_remove_is_idempotent_with_an_acknowledgement(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    collection_id = (await create(client, alice))["id"]
    first, second = await insert_track(ctx, alice), await insert_track(ctx, alice)
    for track in (first, second):
        await add(client, alice, collection_id, track)
    path = alice.path(f"/collections/{collection_id}/tracks/{first}")
    ack = {"success": True, "id": first, "detail": "Track removed from collection."}

    for _ in range(2):
        response = await client.delete(path, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == ack
    assert [t["track_id"] for t in await listed_tracks(client, alice, collection_id)] == [second]
    # Added again, it goes to the end.
    assert (await add(client, alice, collection_id, first)).json()["position"] == 2

    missing = await client.delete(
        alice.path(f"/collections/{MISSING_COLLECTION}/tracks/{first}"), headers=alice.headers
    )
    assert_error(missing, 404, "RESOURCE_NOT_FOUND")


async def test_reorder_puts_listed_tracks_first_and_keeps_the_rest_in_order(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    collection_id = (await create(client, alice))["id"]
    a, b, c, d, e = [await insert_track(ctx, alice, title=name) for name in "abcde"]
    for track in (a, b, c, d, e):
        await add(client, alice, collection_id, track)
    outsider = await insert_track(ctx, alice)  # Alice's, but not in this collection

    response = await client.patch(
        alice.path(f"/collections/{collection_id}/order"),
        json={"ordered_track_ids": [d, "mtrack_unknown", b, outsider, d]},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "id": collection_id,
        "detail": "Collection reordered.",
    }
    listed = await listed_tracks(client, alice, collection_id)
    assert [(t["track_id"], t["position"]) for t in listed] == [
        (d, 0),
        (b, 1),
        (a, 2),
        (c, 3),
        (e, 4),
    ]
    # Appending after a reorder still goes to the end.
    assert (await add(client, alice, collection_id, outsider)).json()["position"] == 5

    invalid = await client.patch(
        alice.path(f"/collections/{collection_id}/order"),
        json={"ordered_track_ids": "not a list"},
        headers=alice.headers,
    )
    assert_error(invalid, 422, "VALIDATION_ERROR")
    assert error_fields(invalid) == ["ordered_track_ids"]


# ---------------------------------------------------------------- scope


def _every_operation(collection_id: str, track_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/collections/{collection_id}", None),
        ("PATCH", f"/collections/{collection_id}", {"name": "mine now"}),
        ("DELETE", f"/collections/{collection_id}", None),
        ("GET", f"/collections/{collection_id}/tracks", None),
        ("POST", f"/collections/{collection_id}/tracks", {"track_id": track_id}),
        ("DELETE", f"/collections/{collection_id}/tracks/{track_id}", None),
        ("PATCH", f"/collections/{collection_id}/order", {"ordered_track_ids": [track_id]}),
    ]


async def test_other_users_collections_answer_exactly_like_missing_ones(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller, ctx: ServiceContext
) -> None:
    collection = await create(client, alice, name="Alice's")
    alices = await insert_track(ctx, alice)
    await add(client, alice, collection["id"], alices)
    alices_path = alice.path(f"/collections/{collection['id']}")
    before = (await client.get(alices_path, headers=alice.headers)).json()

    for caller in (bob, carol):  # same organization; another organization, on its own path
        own_track = await insert_track(ctx, caller)
        operations = zip(
            _every_operation(collection["id"], own_track),
            _every_operation(MISSING_COLLECTION, own_track),
            strict=True,
        )
        for (method, foreign_path, body), (_, missing_path, _) in operations:
            foreign = await client.request(
                method, caller.path(foreign_path), json=body, headers=caller.headers
            )
            missing = await client.request(
                method, caller.path(missing_path), json=body, headers=caller.headers
            )
            assert_error(foreign, 404, "RESOURCE_NOT_FOUND")
            assert without_request_ids(foreign) == without_request_ids(missing)
            assert foreign.headers.keys() == missing.headers.keys()
        listed = await client.get(caller.path("/collections"), headers=caller.headers)
        assert listed.json()["items"] == []

    # Carol on Alice's organization path: 403, which says nothing about the collection.
    for method, path, body in _every_operation(collection["id"], alices):
        denied = await client.request(method, alice.path(path), json=body, headers=carol.headers)
        assert_error(denied, 403, "ORGANIZATION_ACCESS_DENIED")
    listed = await client.get(alice.path("/collections"), headers=carol.headers)
    assert_error(listed, 403, "ORGANIZATION_ACCESS_DENIED")

    got = await client.get(alices_path, headers=alice.headers)
    assert got.json() == before, "nobody else changed it"
    assert before["track_count"] == 1
    assert [t["track_id"] for t in await listed_tracks(client, alice, collection["id"])] == [alices]


async def test_collections_need_a_key(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.get(alice.path("/collections"))
    assert_error(response, 401, "AUTHENTICATION_REQUIRED")
