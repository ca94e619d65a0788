"""Handing a job back (a stopping worker): compare-and-set, no attempt used, fencing kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from musicstudio import queue
from musicstudio.queue import Lease, Outcome
from musicstudio.services.context import ServiceContext
from musicstudio.store.jobs import cancel_job
from tests.conftest import Caller
from tests.helpers import insert_job_rows, job_row, track_values

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = 30


async def _claim(ctx: ServiceContext, owner: str, now: datetime) -> Lease:
    lease = await queue.claim_next_job(ctx.db, owner, now, LEASE)
    assert lease is not None
    return lease


async def _release(ctx: ServiceContext, lease: Lease, now: datetime) -> Outcome:
    async with ctx.db.write() as conn:
        return await queue.release_job(conn, lease, now)


async def _rescue(ctx: ServiceContext, now: datetime) -> None:
    async with ctx.db.write() as conn:
        await queue.rescue_expired_leases(conn, now)


async def test_release_requeues_at_once_without_using_an_attempt(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    lease = await _claim(ctx, "w1", T0)
    await queue.heartbeat(ctx.db, lease, T0 + timedelta(seconds=5), LEASE, progress=40)
    released_at = T0 + timedelta(seconds=9)
    assert await _release(ctx, lease, released_at) is Outcome.RELEASED

    row = await job_row(ctx, job_id)
    assert row["status"] == "queued"
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert row["available_at"] == released_at, "claimable at once, no retry delay"
    assert row["progress"] == 40, "clients never see progress go down"
    assert row["finished_at"] is None and row["error_message"] is None
    assert row["max_attempts"] - row["attempt"] == 3, "the interrupted attempt is not counted"

    again = await _claim(ctx, "w2", released_at)
    assert again.job_id == job_id
    assert again.attempt == 2, "a new attempt number: attempt numbers are never reused"
    assert again.available_at == released_at


async def test_release_is_a_compare_and_set_on_job_attempt_and_owner(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    lease = await _claim(ctx, "w1", T0)
    for wrong in (
        replace(lease, owner="w-other"),
        replace(lease, attempt=lease.attempt + 1),
        replace(lease, attempt=lease.attempt - 1),
        replace(lease, job_id="mgen_missing"),
    ):
        assert await _release(ctx, wrong, T0) is Outcome.LOST
    row = await job_row(ctx, job_id)
    assert (row["status"], row["lease_owner"], row["max_attempts"]) == ("running", "w1", 3)

    # Once rescued and re-claimed by another worker, the old lease cannot hand it back.
    await _rescue(ctx, T0 + timedelta(seconds=LEASE + 1))
    fresh = await _claim(ctx, "w2", T0 + timedelta(seconds=LEASE + 2))
    assert await _release(ctx, lease, T0 + timedelta(seconds=LEASE + 3)) is Outcome.LOST
    row = await job_row(ctx, job_id)
    assert (row["status"], row["lease_owner"], row["attempt"]) == ("running", "w2", 2)

    # Nor after the job finished.
    done = track_values("mtrack_done", alice.org_id, alice.user_id, T0, job_id=job_id)
    assert await queue.complete_job(ctx.db, fresh, T0, done) is Outcome.SUCCEEDED
    assert await _release(ctx, fresh, T0 + timedelta(seconds=LEASE + 4)) is Outcome.LOST
    assert (await job_row(ctx, job_id))["status"] == "succeeded"


async def test_a_released_lease_can_change_nothing_even_if_its_owner_claims_again(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    stale = await _claim(ctx, "w1", T0)
    assert await _release(ctx, stale, T0) is Outcome.RELEASED
    # The same owner name claims it again: only a fresh attempt number tells the leases apart.
    fresh = await _claim(ctx, "w1", T0 + timedelta(seconds=1))
    assert fresh.attempt == stale.attempt + 1

    later = T0 + timedelta(seconds=2)
    assert not (await queue.heartbeat(ctx.db, stale, later, LEASE, progress=90)).held
    assert await _release(ctx, stale, later) is Outcome.LOST
    assert not await queue.mark_cancelled(ctx.db, stale, later)
    async with ctx.db.write() as conn:
        assert await queue.fail_or_retry(conn, stale, later, "x", retryable=False) is None
    stale_track = track_values("mtrack_stale", alice.org_id, alice.user_id, T0, job_id=job_id)
    assert await queue.complete_job(ctx.db, stale, later, stale_track) is Outcome.LOST
    row = await job_row(ctx, job_id)
    assert (row["status"], row["attempt"], row["progress"]) == ("running", 2, 0)

    fresh_track = track_values("mtrack_fresh", alice.org_id, alice.user_id, T0, job_id=job_id)
    assert await queue.complete_job(ctx.db, fresh, later, fresh_track) is Outcome.SUCCEEDED
    assert (await job_row(ctx, job_id))["result_track_id"] == "mtrack_fresh"


async def test_release_of_a_job_with_a_pending_cancel_cancels_it(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    lease = await _claim(ctx, "w1", T0)
    async with ctx.db.write() as conn:
        await cancel_job(conn, alice.org_id, alice.user_id, job_id, T0)
    assert await _release(ctx, lease, T0 + timedelta(seconds=3)) is Outcome.CANCELLED
    row = await job_row(ctx, job_id)
    assert row["status"] == "cancelled" and row["lease_owner"] is None
    assert row["finished_at"] == T0 + timedelta(seconds=3)
    assert row["max_attempts"] == 3, "nothing to retry"
    assert await queue.claim_next_job(ctx.db, "w2", T0 + timedelta(seconds=4), LEASE) is None


async def test_hand_backs_never_exhaust_attempts_but_crashes_still_do(
    ctx: ServiceContext, alice: Caller
) -> None:
    [job_id] = await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=T0)
    now = T0
    for _ in range(5):  # more stops than max_attempts
        assert await _release(ctx, await _claim(ctx, "w", now), now) is Outcome.RELEASED
        now += timedelta(seconds=1)
    for crash in (1, 2, 3):
        await _claim(ctx, f"crashing-{crash}", now)
        now += timedelta(seconds=LEASE + 1)
        await _rescue(ctx, now)
        status = (await job_row(ctx, job_id))["status"]
        assert status == ("failed" if crash == 3 else "queued"), crash
    row = await job_row(ctx, job_id)
    assert row["attempt"] == 8 and row["error_message"] == queue.CRASH_MESSAGE
