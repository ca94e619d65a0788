"""Jobs as users see them, the same on SQLite and PostgreSQL: scoping, list order and
filters, idempotent create under concurrency, cancellation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from musicstudio.errors import IdempotencyKeyReused, NotFound
from musicstudio.services import generations
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import NewGeneration
from musicstudio.store.accounts import Principal
from tests.conftest import Caller
from tests.helpers import insert_job_rows, job_row

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = "http://t"


def _me(caller: Caller) -> Principal:
    return Principal(org_id=caller.org_id, user_id=caller.user_id, key_id="k")


def _req(prompt: str = "calm lo-fi beat", duration: int = 2) -> NewGeneration:
    return NewGeneration(engine="studio", prompt=prompt, duration_seconds=duration)


async def _ids(ctx: ServiceContext, caller: Caller, **kwargs: object) -> list[str]:
    params: dict[str, object] = {"status": None, "limit": 50, "offset": 0, **kwargs}
    jobs = await generations.list_jobs(ctx, _me(caller), **params)  # type: ignore[arg-type]
    return [str(job["id"]) for job in jobs]


async def test_a_job_is_visible_to_its_creator_only(
    ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    job = await generations.create_job(ctx, _me(alice), _req(), None, BASE)
    assert (await generations.get_job(ctx, _me(alice), job["id"], BASE))["id"] == job["id"]
    for other in (bob, carol):  # same organization, another organization
        with pytest.raises(NotFound):
            await generations.get_job(ctx, _me(other), job["id"], BASE)
        assert await _ids(ctx, other) == []
        with pytest.raises(NotFound):
            await generations.cancel_job(ctx, _me(other), job["id"], BASE)
    assert (await job_row(ctx, job["id"]))["status"] == "queued", "others cannot cancel it"
    # A key of Alice's used under Carol's organization sees nothing either.
    crossed = Principal(org_id=carol.org_id, user_id=alice.user_id, key_id="k")
    with pytest.raises(NotFound):
        await generations.get_job(ctx, crossed, job["id"], BASE)


async def test_list_is_newest_first_with_ties_broken_by_id(
    ctx: ServiceContext, alice: Caller
) -> None:
    older = await insert_job_rows(ctx, alice.org_id, alice.user_id, 3, created_at=T0)
    newer = await insert_job_rows(
        ctx, alice.org_id, alice.user_id, 2, created_at=T0 + timedelta(seconds=1)
    )
    listed = await _ids(ctx, alice)
    assert listed == sorted(newer, reverse=True) + sorted(older, reverse=True)
    assert await _ids(ctx, alice, limit=2, offset=2) == listed[2:4]
    assert await _ids(ctx, alice, offset=5) == []


async def test_list_filters_by_status(ctx: ServiceContext, alice: Caller) -> None:
    queued = await insert_job_rows(ctx, alice.org_id, alice.user_id, 2, created_at=T0)
    done = await insert_job_rows(
        ctx, alice.org_id, alice.user_id, 1, created_at=T0, status="succeeded"
    )
    assert sorted(await _ids(ctx, alice, status="queued")) == sorted(queued)
    assert await _ids(ctx, alice, status="succeeded") == done
    assert await _ids(ctx, alice, status="failed") == []


async def test_idempotent_create_replays_and_rejects_a_different_body(
    ctx: ServiceContext, alice: Caller, bob: Caller
) -> None:
    first = await generations.create_job(ctx, _me(alice), _req(), "key-1", BASE)
    again = await generations.create_job(ctx, _me(alice), _req(), "key-1", BASE)
    assert again["id"] == first["id"]
    with pytest.raises(IdempotencyKeyReused):
        await generations.create_job(ctx, _me(alice), _req("other"), "key-1", BASE)
    # Keys are per user: Bob's "key-1" is his own job.
    bobs = await generations.create_job(ctx, _me(bob), _req(), "key-1", BASE)
    assert bobs["id"] != first["id"]
    assert len(await _ids(ctx, alice)) == 1


async def test_concurrent_creates_with_one_key_make_one_job(
    ctx: ServiceContext, alice: Caller
) -> None:
    results = await asyncio.gather(
        *(generations.create_job(ctx, _me(alice), _req(), "same", BASE) for _ in range(12))
    )
    assert len({job["id"] for job in results}) == 1
    assert len(await _ids(ctx, alice)) == 1


async def test_cancel_is_immediate_when_queued_and_requested_when_running(
    ctx: ServiceContext, alice: Caller
) -> None:
    queued = await generations.create_job(ctx, _me(alice), _req(), None, BASE)
    cancelled = await generations.cancel_job(ctx, _me(alice), queued["id"], BASE)
    assert cancelled["status"] == "cancelled"
    [running] = await insert_job_rows(
        ctx, alice.org_id, alice.user_id, 1, created_at=T0, status="running"
    )
    view = await generations.cancel_job(ctx, _me(alice), running, BASE)
    assert view["status"] == "running"
    assert (await job_row(ctx, running))["cancel_requested"] is True
    again = await generations.cancel_job(ctx, _me(alice), queued["id"], BASE)
    assert again["status"] == "cancelled"  # idempotent
