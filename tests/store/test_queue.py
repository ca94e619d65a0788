"""The jobs table as a queue: claims, leases, fencing, retries, cancellation (fake clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from musicstudio import queue
from musicstudio.db.tables import library_entries, tracks
from musicstudio.queue import Outcome
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import insert_job_rows, job_row, track_values

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = 30


async def _claim(ctx: ServiceContext, owner: str, now: datetime) -> queue.Lease | None:
    return await queue.claim_next_job(ctx.db, owner, now, LEASE)


def _track(lease: queue.Lease, track_id: str) -> dict[str, object]:
    return track_values(track_id, lease.org_id, lease.user_id, T0, job_id=lease.job_id)


async def test_claims_oldest_first_and_increments_attempt(
    ctx: ServiceContext, alice: Caller
) -> None:
    first = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    second = await insert_job_rows(
        ctx, alice.org_id, alice.user_id, 1, created_at=T0 + timedelta(1)
    )
    lease = await _claim(ctx, "w1", T0 + timedelta(days=2))
    assert lease is not None and lease.job_id == first[0] and lease.attempt == 1
    assert lease.available_at == T0, "an aware UTC datetime on both backends"
    lease2 = await _claim(ctx, "w2", T0 + timedelta(days=2))
    assert lease2 is not None and lease2.job_id == second[0]
    assert await _claim(ctx, "w3", T0 + timedelta(days=2)) is None
    row = await job_row(ctx, first[0])
    assert row["status"] == "running" and row["lease_owner"] == "w1"


async def test_concurrent_claimers_never_share_an_attempt(
    ctx: ServiceContext, alice: Caller
) -> None:
    made = await insert_job_rows(ctx, alice.org_id, alice.user_id, 60, created_at=T0)
    now = T0 + timedelta(seconds=1)

    async def claimer(name: str) -> list[str]:
        got = []
        while (lease := await _claim(ctx, name, now)) is not None:
            got.append(lease.job_id)
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(8)))
    claimed = [job for batch in results for job in batch]
    assert sorted(claimed) == sorted(made), "every job claimed exactly once"


async def test_expired_lease_is_rescued_and_stale_worker_cannot_finish(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    stale = await _claim(ctx, "w-old", T0)
    assert stale is not None
    await queue.heartbeat(ctx.db, stale, T0 + timedelta(seconds=5), LEASE, progress=60)
    async with ctx.db.write() as conn:
        # Not expired yet: nothing to rescue.
        counts = await queue.rescue_expired_leases(conn, T0 + timedelta(seconds=20))
        assert counts.requeued == 0
        counts = await queue.rescue_expired_leases(conn, T0 + timedelta(seconds=40))
        assert counts.requeued == 1
    fresh = await _claim(ctx, "w-new", T0 + timedelta(seconds=41))
    assert fresh is not None and fresh.job_id == job_id and fresh.attempt == 2

    beat = await queue.heartbeat(ctx.db, stale, T0 + timedelta(seconds=42), LEASE, progress=99)
    assert not beat.held
    stale_track = _track(stale, "mtrack_stale")
    assert await queue.complete_job(ctx.db, stale, T0, stale_track) is Outcome.LOST
    outcome = await queue.complete_job(ctx.db, fresh, T0, _track(fresh, "mtrack_fresh"))
    assert outcome is Outcome.SUCCEEDED
    row = await job_row(ctx, job_id)
    assert row["status"] == "succeeded" and row["progress"] == 100
    assert row["result_track_id"] == "mtrack_fresh"
    async with ctx.db.read() as conn:
        track_ids = (await conn.execute(select(tracks.c.id))).scalars().all()
        entries = (await conn.execute(select(library_entries))).mappings().all()
    assert track_ids == ["mtrack_fresh"], "exactly one completion"
    assert [(e["user_id"], e["track_id"], e["source"]) for e in entries] == [
        (alice.user_id, "mtrack_fresh", "generated")
    ], "the creator's library gets the track, once"
    assert entries[0]["id"].startswith("mlib_") and entries[0]["created_at"] == T0


async def test_progress_never_decreases_and_is_100_only_on_success(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    lease = await _claim(ctx, "w", T0)
    assert lease is not None
    await queue.heartbeat(ctx.db, lease, T0, LEASE, progress=70)
    await queue.heartbeat(ctx.db, lease, T0, LEASE, progress=20)
    await queue.heartbeat(ctx.db, lease, T0, LEASE, progress=100)
    assert (await job_row(ctx, job_id))["progress"] == 99
    async with ctx.db.write() as conn:
        await queue.rescue_expired_leases(conn, T0 + timedelta(seconds=LEASE + 1))
    retry = await _claim(ctx, "w2", T0 + timedelta(seconds=LEASE + 2))
    assert retry is not None
    await queue.heartbeat(ctx.db, retry, T0, LEASE, progress=10)
    assert (await job_row(ctx, job_id))["progress"] == 99, "a retry reports the maximum so far"


async def test_after_max_attempts_the_job_fails_with_a_safe_message(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    now = T0
    for attempt in (1, 2, 3):
        lease = await _claim(ctx, f"w{attempt}", now)
        assert lease is not None and lease.attempt == attempt
        now += timedelta(seconds=LEASE + 1)
        async with ctx.db.write() as conn:
            await queue.rescue_expired_leases(conn, now)
    row = await job_row(ctx, job_id)
    assert row["status"] == "failed"
    assert row["error_message"] == queue.CRASH_MESSAGE
    assert "/" not in str(row["error_message"]) and "Traceback" not in str(row["error_message"])
    assert await _claim(ctx, "w4", now) is None


async def test_errors_retry_then_fail_and_permanent_errors_fail_at_once(
    ctx: ServiceContext, alice: Caller
) -> None:
    [retried, permanent] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 2, created_at=T0)
    lease = await _claim(ctx, "w", T0)
    assert lease is not None and lease.job_id == retried
    async with ctx.db.write() as conn:
        status = await queue.fail_or_retry(conn, lease, T0, "boom", retryable=True)
    assert status == "queued"
    # The retry waits for its delay; meanwhile the next job is served.
    nxt = await _claim(ctx, "w", T0)
    assert nxt is not None and nxt.job_id == permanent
    async with ctx.db.write() as conn:
        assert await queue.fail_or_retry(conn, nxt, T0, "bad input", retryable=False) == "failed"
    assert (await job_row(ctx, permanent))["error_message"] == "bad input"


async def test_cancel_requested_during_render_wins_over_completion(
    ctx: ServiceContext, alice: Caller
) -> None:
    from musicstudio.store.jobs import cancel_job

    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    lease = await _claim(ctx, "w", T0)
    assert lease is not None
    async with ctx.db.write() as conn:
        await cancel_job(conn, alice.org_id, alice.user_id, job_id, T0)
    outcome = await queue.complete_job(ctx.db, lease, T0, _track(lease, "mtrack_x"))
    assert outcome is Outcome.CANCELLED
    assert (await job_row(ctx, job_id))["status"] == "cancelled"


async def test_expired_lease_of_a_cancel_requested_job_becomes_cancelled(
    ctx: ServiceContext, alice: Caller
) -> None:
    from musicstudio.store.jobs import cancel_job

    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    assert await _claim(ctx, "w", T0) is not None
    async with ctx.db.write() as conn:
        await cancel_job(conn, alice.org_id, alice.user_id, job_id, T0)
        counts = await queue.rescue_expired_leases(conn, T0 + timedelta(seconds=LEASE + 1))
    assert counts.cancelled == 1
    assert (await job_row(ctx, job_id))["status"] == "cancelled"


async def test_queue_state_counts_live_jobs_and_the_oldest_wait(
    ctx: ServiceContext, alice: Caller
) -> None:
    now = T0 + timedelta(seconds=90)
    async with ctx.db.read() as conn:
        empty = await queue.queue_state(conn, now)
    assert empty == queue.QueueState(0, 0, 0, 0.0)
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 2, created_at=T0)
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0 + timedelta(30))
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0, status="running")
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0, status="succeeded")
    async with ctx.db.read() as conn:
        state = await queue.queue_state(conn, now)
    # The job available in 30 days is queued but not claimable; history is not counted.
    assert (state.queued, state.claimable, state.running) == (3, 2, 1)
    assert state.oldest_claimable_seconds == 90.0
