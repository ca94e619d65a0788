"""Claim exclusivity under real concurrency, and fencing: only the current lease can finish."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from musicstudio import ids, queue
from musicstudio.db.database import Database
from musicstudio.db.tables import generation_jobs, library_entries, tracks
from musicstudio.queue import Lease, Outcome
from musicstudio.services.context import ServiceContext
from musicstudio.store.jobs import cancel_job
from tests.conftest import Caller
from tests.helpers import insert_job_rows, job_row, track_values
from tests.scale import scaled

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = 30
CLAIMERS, JOBS = scaled((16, 1_000), (32, 5_000))


@dataclass(frozen=True)
class Claim:
    worker: str
    job_id: str
    attempt: int
    outcome: Outcome


def _track(lease: Lease, now: datetime) -> dict[str, Any]:
    # The recipe names the attempt's worker, so the stored track shows who completed it.
    return track_values(
        ids.new_id(ids.TRACK),
        lease.org_id,
        lease.user_id,
        now,
        job_id=lease.job_id,
        recipe={"worker": lease.owner, "attempt": lease.attempt},
    )


async def _claim_until_empty(url: str, worker: str, ready: asyncio.Barrier) -> list[Claim]:
    """One worker with its own engine and connections, as a separate process would have."""
    db = Database(url)
    now = T0 + timedelta(seconds=1)
    claims: list[Claim] = []
    try:
        # Open the connection before the race (nothing is available yet at this time).
        assert await queue.claim_next_job(db, worker, T0 - timedelta(days=1), LEASE) is None
        await ready.wait()
        while (lease := await queue.claim_next_job(db, worker, now, LEASE)) is not None:
            outcome = await queue.complete_job(db, lease, now, _track(lease, now))
            claims.append(Claim(worker, lease.job_id, lease.attempt, outcome))
    finally:
        await db.dispose()
    return claims


async def test_concurrent_claimers_each_attempt_belongs_to_one_worker(
    ctx: ServiceContext, alice: Caller
) -> None:
    made = await insert_job_rows(ctx, alice.org_id, alice.user_id, JOBS, created_at=T0)
    ready = asyncio.Barrier(CLAIMERS)
    batches = await asyncio.gather(
        *(_claim_until_empty(ctx.settings.database_url, f"w{i}", ready) for i in range(CLAIMERS))
    )
    claims = [claim for batch in batches for claim in batch]

    shared = [key for key, n in Counter((c.job_id, c.attempt) for c in claims).items() if n > 1]
    assert shared == [], "an attempt claimed by more than one worker"
    assert sorted(c.job_id for c in claims) == sorted(made), "every job claimed exactly once"
    assert {c.attempt for c in claims} == {1}, "the claim increments the attempt from 0"
    assert {c.outcome for c in claims} == {Outcome.SUCCEEDED}
    assert len({c.worker for c in claims}) > 1, "the claimers really competed"

    claimed_by = {c.job_id: c.worker for c in claims}
    async with ctx.db.read() as conn:
        jobs = (await conn.execute(select(generation_jobs))).mappings().all()
        made_tracks = (await conn.execute(select(tracks))).mappings().all()
        entries = (await conn.execute(select(func.count()).select_from(library_entries))).scalar()
        state = await queue.queue_state(conn, T0 + timedelta(days=1))
    assert Counter((j["status"], j["attempt"], j["lease_owner"]) for j in jobs) == {
        ("succeeded", 1, None): JOBS
    }
    assert all(j["lease_expires_at"] is None for j in jobs)
    assert Counter(t["job_id"] for t in made_tracks) == Counter(made), "one track per job"
    result_of = {j["id"]: j["result_track_id"] for j in jobs}
    assert all(result_of[t["job_id"]] == t["id"] for t in made_tracks)
    assert all(t["recipe"]["worker"] == claimed_by[t["job_id"]] for t in made_tracks)
    assert entries == JOBS, "one library entry per track"
    assert state == queue.QueueState(0, 0, 0, 0.0), "nothing left queued or running"


async def _snapshot(ctx: ServiceContext, job_ids: list[str]) -> dict[str, Any]:
    """The jobs' rows, every track id and every library entry id."""
    async with ctx.db.read() as conn:
        made_tracks = (await conn.execute(select(tracks.c.id))).scalars().all()
        entries = (await conn.execute(select(library_entries.c.id))).scalars().all()
    rows = {job_id: await job_row(ctx, job_id) for job_id in job_ids}
    return {"jobs": rows, "tracks": sorted(made_tracks), "entries": sorted(entries)}


async def _assert_cannot_finish(
    ctx: ServiceContext, lease: Lease, now: datetime, job_ids: list[str]
) -> None:
    """Every change a worker can make with ``lease`` is refused and leaves the store as it was."""
    before = await _snapshot(ctx, job_ids)
    beat = await queue.heartbeat(ctx.db, lease, now, LEASE, progress=90)
    assert beat == queue.Heartbeat(held=False, cancel_requested=False)
    assert await queue.complete_job(ctx.db, lease, now, _track(lease, now)) is Outcome.LOST
    assert not await queue.mark_cancelled(ctx.db, lease, now)
    for retryable in (True, False):
        async with ctx.db.write() as conn:
            status = await queue.fail_or_retry(conn, lease, now, "boom", retryable=retryable)
        assert status is None
    assert await _snapshot(ctx, job_ids) == before, f"{lease} changed the store"


@pytest.mark.parametrize("cancel_requested", [False, True])
async def test_a_rescued_and_reclaimed_job_refuses_its_stale_worker(
    ctx: ServiceContext, alice: Caller, cancel_requested: bool
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    stale = await queue.claim_next_job(ctx.db, "w-old", T0, LEASE)
    assert stale is not None
    async with ctx.db.write() as conn:
        counts = await queue.rescue_expired_leases(conn, T0 + timedelta(seconds=LEASE + 1))
    assert counts == queue.RescueCounts(requeued=1, failed=0, cancelled=0)
    now = T0 + timedelta(seconds=LEASE + 2)
    fresh = await queue.claim_next_job(ctx.db, "w-new", now, LEASE)
    assert fresh is not None and (fresh.job_id, fresh.attempt) == (job_id, 2)
    # The same worker id coming back (a restarted worker) is fenced off by the attempt too.
    same_name = replace(stale, owner="w-new")
    if cancel_requested:
        # The stale lease must not turn the pending cancel into a result either.
        async with ctx.db.write() as conn:
            await cancel_job(conn, alice.org_id, alice.user_id, job_id, now)

    for lease in (stale, same_name):
        await _assert_cannot_finish(ctx, lease, now + timedelta(seconds=1), [job_id])

    outcome = await queue.complete_job(ctx.db, fresh, now, _track(fresh, now))
    row = await job_row(ctx, job_id)
    if cancel_requested:
        assert outcome is Outcome.CANCELLED and row["status"] == "cancelled"
        assert row["result_track_id"] is None
    else:
        assert outcome is Outcome.SUCCEEDED and row["status"] == "succeeded"
        assert row["result_track_id"] is not None
    assert row["lease_owner"] is None and row["attempt"] == 2


async def test_finishing_is_a_compare_and_set_on_job_attempt_and_owner(
    ctx: ServiceContext, alice: Caller
) -> None:
    both = await insert_job_rows(ctx, alice.org_id, alice.user_id, 2, created_at=T0)
    mine = await queue.claim_next_job(ctx.db, "w1", T0, LEASE)
    theirs = await queue.claim_next_job(ctx.db, "w2", T0, LEASE)
    assert mine is not None and theirs is not None
    assert (mine.attempt, theirs.attempt) == (1, 1)
    forged = [
        replace(mine, owner="w2"),  # right job and attempt, wrong owner
        replace(mine, attempt=2),  # right owner, an attempt not yet made
        replace(mine, attempt=0),  # right owner, an attempt before the claim
        replace(mine, job_id=theirs.job_id),  # right owner and attempt, another worker's job
    ]
    now = T0 + timedelta(seconds=5)
    for lease in forged:
        await _assert_cannot_finish(ctx, lease, now, both)
    async with ctx.db.write() as conn:
        await cancel_job(conn, alice.org_id, alice.user_id, mine.job_id, now)
    for lease in forged:
        await _assert_cannot_finish(ctx, lease, now, both)

    # The genuine leases still hold: forgeries did not disturb them.
    assert await queue.heartbeat(ctx.db, mine, now, LEASE, 10) == queue.Heartbeat(True, True)
    assert await queue.complete_job(ctx.db, mine, now, _track(mine, now)) is Outcome.CANCELLED
    assert await queue.complete_job(ctx.db, theirs, now, _track(theirs, now)) is Outcome.SUCCEEDED
    assert (await job_row(ctx, mine.job_id))["status"] == "cancelled"
    assert (await job_row(ctx, theirs.job_id))["status"] == "succeeded"
