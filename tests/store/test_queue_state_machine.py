"""A Hypothesis state machine over the queue, on a fake clock, checked against a model.

Each example starts from an empty queue; after every step the store must equal the model and
keep the queue's invariants.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio import ids, queue
from musicstudio.db.database import Database
from musicstudio.db.tables import generation_jobs, library_entries, tracks
from musicstudio.queue import Lease, Outcome
from musicstudio.store.accounts import insert_organization, insert_user
from musicstudio.store.jobs import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TERMINAL,
    cancel_job,
)
from tests.helpers import insert_job_rows, track_values
from tests.postgres import empty_tables
from tests.scale import scaled

T = TypeVar("T")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = 30
RETRY_DELAY = timedelta(seconds=1)  # fail_or_retry's default delay
WORKERS = ("w0", "w1", "w2")
ERROR = "the engine gave up"
RUNNING_PROGRESS_CAP = 99  # 100 means succeeded: only a finished job says so

# Enough steps to reach retries, rescues and last attempts; few examples to stay fast in CI
# (PostgreSQL, slower a step, runs the same statements and gets fewer).
EXAMPLES = {"sqlite": scaled(25, 250), "postgresql": scaled(15, 150)}
MACHINE_SETTINGS = settings(
    stateful_step_count=scaled(50, 100),
    deadline=None,
    database=None,  # no example files in the working tree; a failure prints its steps
    suppress_health_check=[HealthCheck.too_slow],
)
WORKER_ACTIONS = ("heartbeat", "succeed", "fail", "fail permanently", "checkpoint")
# What every run must have done at least once, or the machine is not exploring the queue.
# Coarse on purpose: finer paths (a cancel seen at a checkpoint, the last attempt's rescue)
# are reached in most runs, not all, and the examples are random.
MUST_REACH = {"claim", "acted under a lease that holds", "refused a lease", "rescued"}


@dataclass
class ModelJob:
    """What the store must hold for one job."""

    job_id: str
    max_attempts: int
    available_at: datetime
    status: str = QUEUED
    attempt: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    progress: int = 0
    result_track_id: str | None = None
    error_message: str | None = None

    def holds(self, lease: Lease) -> bool:
        return (
            self.status == RUNNING
            and self.attempt == lease.attempt
            and self.lease_owner == lease.owner
        )

    def release(self, status: str) -> None:
        self.status, self.lease_owner, self.lease_expires_at = status, None, None


MODELLED = tuple(name for name in ModelJob.__dataclass_fields__ if name != "job_id")


class QueueMachine(RuleBasedStateMachine):
    """Workers (holding current, stale and forged leases), a user and the rescuer, any order.

    Workers act under a lease that holds through four rules and under a stale or forged one
    through a fifth, so both are frequent. Hypothesis favours rules with fewer arguments:
    all take one but the clock, which would otherwise crowd the others out.
    """

    def __init__(self, database_url: str, reached: Counter[str]) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.db = Database(database_url)
        self.reached = reached
        self.org_id, self.user_id = ids.new_id(ids.ORGANIZATION), ids.new_id(ids.USER)
        self.run(self._start())
        self.now = T0
        self.jobs: dict[str, ModelJob] = {}
        self.handed_out: dict[tuple[str, int, str], Lease] = {}  # every lease claims returned
        self.previous_rows: dict[str, dict[str, Any]] = {}  # the store before this step
        self.untouched: set[str] = set()  # jobs this step's stale lease must not have changed
        self.attempt_seen: dict[str, int] = {}
        self.finished_rows: dict[str, dict[str, Any]] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.db.dispose())
        finally:
            self.runner.close()

    async def _start(self) -> None:
        """An empty queue and a fresh account. PostgreSQL is reused between examples: deleting
        the few rows an example leaves is ~20x faster than TRUNCATE, and accounts don't matter."""
        async with self.db.write() as conn:
            for table in (library_entries, tracks, generation_jobs):
                await conn.execute(delete(table))
            await insert_organization(conn, self.org_id, "Org", T0)
            await insert_user(conn, self.user_id, self.org_id, "user@example.com", T0)

    def _write(self, action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def in_transaction() -> T:
            async with self.db.write() as conn:
                return await action(conn)

        return self.run(in_transaction())

    def _expired(self) -> list[ModelJob]:
        return [
            job
            for job in self.jobs.values()
            if job.status == RUNNING and job.lease_expires_at is not None
            if job.lease_expires_at < self.now  # expiring at ``now`` exactly still holds
        ]

    # --- the user, the clock and the rescuer ---------------------------------------------

    @initialize(
        max_attempts=st.lists(st.integers(1, 3), min_size=1, max_size=4), claims=st.integers(0, 4)
    )
    def start_with_work(self, max_attempts: list[int], claims: int) -> None:
        """Some jobs, some of them claimed: rules that need a running job can start at once."""
        for limit in max_attempts:
            self.enqueue(limit)
        for n in range(claims):
            self.claim(WORKERS[n % len(WORKERS)])

    @rule(max_attempts=st.integers(1, 3))
    def enqueue(self, max_attempts: int) -> None:
        made = self.run(insert_job_rows(self, self.org_id, self.user_id, 1, created_at=self.now))
        [job_id] = made
        set_max = update(generation_jobs).where(generation_jobs.c.id == job_id)
        self._write(lambda conn: conn.execute(set_max.values(max_attempts=max_attempts)))
        self.jobs[job_id] = ModelJob(job_id, max_attempts, available_at=self.now)

    @rule(data=st.data())
    def user_cancels(self, data: st.DataObject) -> None:
        """A running job, a queued one or (which changes nothing) a finished one."""
        kinds: dict[str, list[str]] = {RUNNING: [], QUEUED: [], "finished": []}
        for job_id, job in sorted(self.jobs.items()):
            kinds[job.status if job.status in kinds else "finished"].append(job_id)
        kind = data.draw(st.sampled_from([kind for kind, some in kinds.items() if some]), "kind")
        self._cancel(self.jobs[data.draw(st.sampled_from(kinds[kind]), "job")])

    @precondition(lambda self: bool(self._rendering()))
    @rule(data=st.data())
    def user_cancels_a_render(self, data: st.DataObject) -> None:
        """A user cancels a job being rendered: the cancel with the most paths after it
        (checkpoint, completion, failure, rescue), so it has a rule of its own."""
        self._cancel(self.jobs[data.draw(st.sampled_from(self._rendering()), "job")])

    def _rendering(self) -> list[str]:
        return sorted(
            job_id
            for job_id, job in self.jobs.items()
            if job.status == RUNNING and not job.cancel_requested
        )

    def _cancel(self, job: ModelJob) -> None:
        self._write(lambda conn: cancel_job(conn, self.org_id, self.user_id, job.job_id, self.now))
        if job.status == QUEUED:
            job.status = CANCELLED
        elif job.status == RUNNING:
            job.cancel_requested = True

    @rule(seconds=st.integers(0, 2 * LEASE), rescuer_runs=st.booleans())
    def time_passes(self, seconds: int, rescuer_runs: bool) -> None:
        """Time passes; then the rescuer runs, or expired leases wait for it (and their
        workers may still act)."""
        self.now += timedelta(seconds=seconds)
        if rescuer_runs:
            self._rescue()

    @precondition(lambda self: any(job.status == RUNNING for job in self.jobs.values()))
    @rule(data=st.data())
    def lease_runs_out(self, data: st.DataObject) -> None:
        """The clock reaches a running job's lease expiry, exactly or just past, and the
        rescuer runs at once."""
        running = sorted(j for j, job in self.jobs.items() if job.status == RUNNING)
        job = self.jobs[data.draw(st.sampled_from(running), "job")]
        assert job.lease_expires_at is not None
        past = data.draw(st.sampled_from([1, 0]), "seconds past expiry")
        self.now = max(self.now, job.lease_expires_at + timedelta(seconds=past))
        self._rescue()

    def _rescue(self) -> None:
        counts = self._write(lambda conn: queue.rescue_expired_leases(conn, self.now))
        expected = Counter[str]()
        for job in self._expired():
            if job.cancel_requested:
                job.release(CANCELLED)
            elif job.attempt >= job.max_attempts:
                job.release(FAILED)
                job.error_message = queue.CRASH_MESSAGE
            else:
                job.release(QUEUED)
                job.available_at = self.now
            expected[job.status] += 1
            self.reached[f"rescue: {job.status}"] += 1
            self.reached["rescued"] += 1
        assert counts == queue.RescueCounts(
            requeued=expected[QUEUED], failed=expected[FAILED], cancelled=expected[CANCELLED]
        )

    # --- workers ---------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        lease = self.run(queue.claim_next_job(self.db, worker, self.now, LEASE))
        available = [
            job
            for job in self.jobs.values()
            if job.status == QUEUED and job.available_at <= self.now
        ]
        if not available:
            assert lease is None, "claimed a job that was not available"
            return
        job = min(available, key=lambda j: (j.available_at, j.job_id))
        assert lease is not None, "an available job was not claimed"
        assert (lease.job_id, lease.attempt, lease.owner) == (job.job_id, job.attempt + 1, worker)
        assert (lease.max_attempts, lease.available_at) == (job.max_attempts, job.available_at)
        job.status, job.attempt, job.lease_owner = RUNNING, job.attempt + 1, worker
        job.lease_expires_at = self.now + timedelta(seconds=LEASE)
        self.handed_out[(lease.job_id, lease.attempt, lease.owner)] = lease
        self.reached["claim"] += 1

    def _holding(self) -> list[tuple[str, int, str]]:
        return [key for key, lease in self.handed_out.items() if self.jobs[key[0]].holds(lease)]

    @precondition(lambda self: bool(self._holding()))
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        self._act(self._holding_lease(data), "heartbeat", data)

    @precondition(lambda self: bool(self._holding()))
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        self._act(self._holding_lease(data), "succeed", data)

    @precondition(lambda self: bool(self._holding()))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        lease = self._holding_lease(data)
        self._act(lease, data.draw(st.sampled_from(["fail", "fail permanently"])), data)

    @precondition(lambda self: bool(self._holding()))
    @rule(data=st.data())
    def stop_at_checkpoint(self, data: st.DataObject) -> None:
        """The worker stops at a checkpoint, whether or not a cancel was asked for."""
        self._act(self._holding_lease(data), "checkpoint", data)

    @precondition(lambda self: bool(self.handed_out))
    @rule(data=st.data())
    def stale_worker_acts(self, data: st.DataObject) -> None:
        """A worker acts under a lease that lost its job, or under a forged one: another owner,
        or the same owner's previous or next attempt ("next" holds if that owner won it)."""
        holding = self._holding()
        stale = [key for key in sorted(self.handed_out) if key not in holding]
        forge = not stale or data.draw(st.booleans(), "forged")
        key = data.draw(st.sampled_from(sorted(self.handed_out) if forge else stale), "lease")
        lease = self.handed_out[key]
        if forge:
            forgery = data.draw(st.sampled_from(["owner", "previous", "next"]), "forgery")
            if forgery == "owner":
                lease = replace(lease, owner="intruder")
            else:
                lease = replace(lease, attempt=lease.attempt + (1 if forgery == "next" else -1))
        self._act(lease, data.draw(st.sampled_from(WORKER_ACTIONS), "action"), data)

    def _holding_lease(self, data: st.DataObject) -> Lease:
        return self.handed_out[data.draw(st.sampled_from(sorted(self._holding())), "lease")]

    def _act(self, lease: Lease, action: str, data: st.DataObject) -> None:
        """Run a worker's action under ``lease`` and check its answer against the model."""
        job = self.jobs[lease.job_id]
        held = job.holds(lease)
        if not held:
            self.untouched.add(lease.job_id)  # checked by the invariant after this step
        self.reached[f"{action}: {'held' if held else 'not held'}"] += 1
        self.reached["acted under a lease that holds" if held else "refused a lease"] += 1
        if action == "heartbeat":
            progress = st.one_of(st.integers(0, RUNNING_PROGRESS_CAP), st.integers(100, 120))
            self._heartbeat(lease, job, held, data.draw(progress, "progress"))
        elif action == "succeed":
            self._succeed(lease, job, held)
        elif action == "checkpoint":
            self._stop_at_checkpoint(lease, job, held)
        else:
            self._fail(lease, job, held, retryable=action == "fail")

    def _heartbeat(self, lease: Lease, job: ModelJob, held: bool, progress: int) -> None:
        beat = self.run(queue.heartbeat(self.db, lease, self.now, LEASE, progress))
        assert beat == queue.Heartbeat(held=held, cancel_requested=held and job.cancel_requested)
        if held:
            job.lease_expires_at = self.now + timedelta(seconds=LEASE)
            job.progress = max(job.progress, min(progress, RUNNING_PROGRESS_CAP))

    def _succeed(self, lease: Lease, job: ModelJob, held: bool) -> None:
        track_id = ids.new_id(ids.TRACK)
        track = track_values(track_id, lease.org_id, lease.user_id, self.now, job_id=lease.job_id)
        outcome = self.run(queue.complete_job(self.db, lease, self.now, track))
        if not held:
            assert outcome is Outcome.LOST, "a lease that does not hold finished its job"
        elif job.cancel_requested:
            assert outcome is Outcome.CANCELLED
            job.release(CANCELLED)
        else:
            assert outcome is Outcome.SUCCEEDED
            job.release(SUCCEEDED)
            job.progress, job.result_track_id = 100, track_id

    def _fail(self, lease: Lease, job: ModelJob, held: bool, *, retryable: bool) -> None:
        status = self._write(
            lambda conn: queue.fail_or_retry(conn, lease, self.now, ERROR, retryable=retryable)
        )
        if not held:
            assert status is None, "a lease that does not hold failed or re-queued its job"
            return
        if job.cancel_requested:
            job.release(CANCELLED)
        elif retryable and job.attempt < job.max_attempts:
            job.release(QUEUED)
            job.available_at = self.now + RETRY_DELAY
        else:
            job.release(FAILED)
            job.error_message = ERROR
        assert status == job.status
        self.reached[f"failed, now {status}"] += 1

    def _stop_at_checkpoint(self, lease: Lease, job: ModelJob, held: bool) -> None:
        stopped = self.run(queue.mark_cancelled(self.db, lease, self.now))
        assert stopped is (held and job.cancel_requested)
        if stopped:
            job.release(CANCELLED)
            self.reached["stopped at a checkpoint"] += 1

    # --- what must hold after every step -----------------------------------------------------

    async def _read_store(self) -> tuple[list[dict[str, Any]], dict[str, str], list[str]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(generation_jobs))).mappings().all()
            made = (await conn.execute(select(tracks.c.id, tracks.c.job_id))).all()
            entries = (await conn.execute(select(library_entries.c.track_id))).scalars().all()
        return [dict(row) for row in rows], {row.id: row.job_id for row in made}, list(entries)

    @invariant()
    def store_keeps_the_queue_invariants(self) -> None:
        rows, track_jobs, entries = self.run(self._read_store())
        assert {row["id"] for row in rows} == set(self.jobs)
        for row in rows:
            job_id, status = row["id"], row["status"]
            assert status in STATUSES
            running = status == RUNNING
            assert (row["lease_owner"] is not None) is running, "lease owner iff running"
            assert (row["lease_expires_at"] is not None) is running, "lease expiry iff running"
            assert self.attempt_seen.get(job_id, 0) <= row["attempt"], "attempt went down"
            assert row["attempt"] <= row["max_attempts"]
            assert (row["progress"] == 100) is (status == SUCCEEDED), "100% iff succeeded"
            self.attempt_seen[job_id] = row["attempt"]
            if job_id in self.untouched:
                assert row == self.previous_rows[job_id], "a lease that does not hold changed it"
            if job_id in self.finished_rows:
                assert row == self.finished_rows[job_id], "a finished job changed"
            elif status in TERMINAL:
                self.finished_rows[job_id] = row
            job = self.jobs[job_id]
            expected = {name: getattr(job, name) for name in MODELLED}
            assert {name: row[name] for name in MODELLED} == expected
        self.previous_rows = {row["id"]: row for row in rows}
        self.untouched.clear()
        per_job = Counter(track_jobs.values())
        assert all(count == 1 for count in per_job.values()), "a job with two tracks"
        succeeded = {
            row["id"]: row["result_track_id"] for row in rows if row["status"] == SUCCEEDED
        }
        assert set(per_job) == set(succeeded), "a track exists iff its job succeeded"
        assert all(track_jobs[track_id] == job_id for job_id, track_id in succeeded.items())
        assert sorted(entries) == sorted(track_jobs), "one library entry per track"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
# A failure shrinks for up to 5 minutes (Hypothesis's limit): let it finish and print the steps.
@pytest.mark.timeout(scaled(600, 3600))
def test_queue_state_machine(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path
) -> None:
    """Sync on purpose: each machine drives its own event loop (``asyncio.Runner``)."""
    if backend == "sqlite":
        numbers = itertools.count()

        def fresh_database() -> str:
            path = tmp_path / f"{next(numbers)}.db"
            shutil.copy(migrated_template, path)
            return f"sqlite+aiosqlite:///{path}"

    else:
        url: str = request.getfixturevalue("postgres_url")
        asyncio.run(empty_tables(url))

        def fresh_database() -> str:
            return url

    reached = Counter[str]()

    def machine() -> QueueMachine:
        return QueueMachine(fresh_database(), reached)

    # Any factory will do (the parameter is ``state_machine_factory``); the stub says a class.
    run_state_machine_as_test(
        machine,  # type: ignore[arg-type]
        settings=settings(MACHINE_SETTINGS, max_examples=EXAMPLES[backend]),
    )
    assert MUST_REACH - set(reached) == set(), f"paths not explored: {reached}"
