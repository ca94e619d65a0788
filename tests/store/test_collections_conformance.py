"""Collections the same on SQLite and PostgreSQL: order by position through adds, removes and
reorders, soft-deleted tracks left out, concurrent appends taking distinct positions."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from musicstudio.db.tables import collection_tracks
from musicstudio.errors import NotFound
from musicstudio.services import collections
from musicstudio.services.context import ServiceContext
from musicstudio.store.accounts import Principal
from tests.api.test_collections import insert_track, soft_delete_track
from tests.conftest import Caller


def _me(caller: Caller) -> Principal:
    return Principal(org_id=caller.org_id, user_id=caller.user_id, key_id="k")


async def _new_collection(ctx: ServiceContext, caller: Caller, name: str = "c") -> str:
    created = await collections.create_collection(ctx, _me(caller), {"name": name})
    return str(created["id"])


async def _order(ctx: ServiceContext, caller: Caller, collection_id: str) -> list[str]:
    page = await collections.list_tracks(ctx, _me(caller), collection_id, limit=500, offset=0)
    return [item["track_id"] for item in page["items"]]


async def _positions(ctx: ServiceContext, collection_id: str) -> dict[str, int]:
    """Every stored entry's position, deleted tracks included."""
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            select(collection_tracks.c.track_id, collection_tracks.c.position).where(
                collection_tracks.c.collection_id == collection_id
            )
        )
        return {row.track_id: row.position for row in rows}


async def test_appends_take_the_next_position_and_repeat_adds_change_nothing(
    ctx: ServiceContext, alice: Caller
) -> None:
    collection_id = await _new_collection(ctx, alice)
    made = [await insert_track(ctx, alice) for _ in range(3)]
    for index, track in enumerate(made):
        entry, added = await collections.add_track(ctx, _me(alice), collection_id, track)
        assert added and entry["position"] == index
    entry, added = await collections.add_track(ctx, _me(alice), collection_id, made[0])
    assert not added and entry["position"] == 0
    assert await _order(ctx, alice, collection_id) == made
    assert (await collections.get_collection(ctx, _me(alice), collection_id))["track_count"] == 3


async def test_order_follows_removes_and_reorders(ctx: ServiceContext, alice: Caller) -> None:
    collection_id = await _new_collection(ctx, alice)
    a, b, c, d = [await insert_track(ctx, alice) for _ in range(4)]
    for track in (a, b, c, d):
        await collections.add_track(ctx, _me(alice), collection_id, track)

    await collections.remove_track(ctx, _me(alice), collection_id, b)
    await collections.remove_track(ctx, _me(alice), collection_id, b)  # idempotent
    assert await _order(ctx, alice, collection_id) == [a, c, d]

    await collections.reorder(ctx, _me(alice), collection_id, [d, "mtrack_nope", d, b])
    assert await _order(ctx, alice, collection_id) == [d, a, c]
    assert await _positions(ctx, collection_id) == {d: 0, a: 1, c: 2}

    entry, _ = await collections.add_track(ctx, _me(alice), collection_id, b)
    assert entry["position"] == 3
    await collections.reorder(ctx, _me(alice), collection_id, [b, c])
    assert await _order(ctx, alice, collection_id) == [b, c, d, a]


async def test_soft_deleted_tracks_are_left_out_of_lists_and_counts(
    ctx: ServiceContext, alice: Caller
) -> None:
    collection_id = await _new_collection(ctx, alice)
    kept, gone = await insert_track(ctx, alice), await insert_track(ctx, alice)
    for track in (gone, kept):
        await collections.add_track(ctx, _me(alice), collection_id, track)
    await soft_delete_track(ctx, gone)
    assert await _order(ctx, alice, collection_id) == [kept]
    assert (await collections.get_collection(ctx, _me(alice), collection_id))["track_count"] == 1
    with pytest.raises(NotFound):  # nor can it be added again
        await collections.add_track(ctx, _me(alice), collection_id, gone)


async def test_concurrent_appends_take_distinct_contiguous_positions(
    ctx: ServiceContext, alice: Caller
) -> None:
    collection_id = await _new_collection(ctx, alice)
    made = [await insert_track(ctx, alice) for _ in range(8)]
    results = await asyncio.gather(
        *(collections.add_track(ctx, _me(alice), collection_id, track) for track in made)
    )
    assert all(added for _, added in results)
    positions = await _positions(ctx, collection_id)
    assert sorted(positions) == sorted(made)
    assert sorted(positions.values()) == list(range(8))


async def test_concurrent_adds_of_one_track_store_it_once(
    ctx: ServiceContext, alice: Caller
) -> None:
    collection_id = await _new_collection(ctx, alice)
    track = await insert_track(ctx, alice)
    results = await asyncio.gather(
        *(collections.add_track(ctx, _me(alice), collection_id, track) for _ in range(6))
    )
    assert sum(added for _, added in results) == 1
    assert await _positions(ctx, collection_id) == {track: 0}


async def test_collections_are_their_owners_only(
    ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    collection_id = await _new_collection(ctx, alice)
    newer = await _new_collection(ctx, alice, "newer")
    listed = await collections.list_collections(ctx, _me(alice), limit=50, offset=0)
    assert [c["id"] for c in listed] == [newer, collection_id]
    assert all(c["track_count"] is None for c in listed)
    for other in (bob, carol):
        assert await collections.list_collections(ctx, _me(other), limit=50, offset=0) == []
        with pytest.raises(NotFound):
            await collections.get_collection(ctx, _me(other), collection_id)
        with pytest.raises(NotFound):
            await collections.reorder(ctx, _me(other), collection_id, [])
    await collections.delete_collection(ctx, _me(alice), collection_id)
    with pytest.raises(NotFound):
        await collections.get_collection(ctx, _me(alice), collection_id)
