"""The worker loop: rescue expired leases, claim a job, render it under a heartbeat, finish.

On stop it claims nothing more; a job still running ``stop_soft_seconds`` later is asked to
stop and handed back to the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from musicstudio import queue
from musicstudio.clock import utcnow
from musicstudio.db.database import DatabaseUnavailable
from musicstudio.engines.base import (
    FocusSegment,
    RenderCancelled,
    RenderError,
    RenderRequest,
    RenderResult,
    discard_stems,
)
from musicstudio.queue import Lease, Outcome
from musicstudio.services.context import ServiceContext
from musicstudio.storage.base import StorageError
from musicstudio.store.jobs import QUEUED
from musicstudio.store.tracks import get_track_recipe
from musicstudio.wakeup import WorkSignal, announce_work
from musicstudio.worker.attempt import AttemptState
from musicstudio.worker.metrics import WorkerMetrics
from musicstudio.worker.publish import CompletionUnknown, publish_render, store_stems

log = logging.getLogger("musicstudio.worker")

GENERIC_FAILURE = "Rendering failed because of an internal error. Please try again."
STORAGE_FAILURE = "The finished audio could not be stored. Please try again."
PROGRESS_WRITE_INTERVAL = 0.5  # seconds between progress writes while rendering


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """One worker: processes jobs one at a time until ``stop`` is set (see ``run``)."""

    def __init__(
        self,
        ctx: ServiceContext,
        worker_id: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.ctx = ctx
        self.worker_id = worker_id or new_worker_id()
        self.metrics = metrics or WorkerMetrics()
        self.settings = ctx.settings
        self._last_rescue = 0.0
        self.signal = WorkSignal(ctx.settings.database_url)
        self._stop: asyncio.Event | None = None  # given by ``run``; ``run_once`` alone never stops
        # The lease of the job in hand until it is finished or handed back (read by the
        # process's exit watchdog to tell a clean stop from one that left a lease behind).
        self.held_lease: Lease | None = None

    @property
    def work_root(self) -> Path:
        """Scratch space of this process; a killed worker's leftovers are swept on start."""
        return self.settings.data_dir / "work" / str(os.getpid())

    def sweep_stale_work_dirs(self) -> list[Path]:
        """Remove scratch dirs of worker processes that no longer exist (killed mid-render)."""
        removed = []
        root = self.settings.data_dir / "work"
        for entry in root.iterdir() if root.is_dir() else ():
            if entry.name.isdigit() and not _process_alive(int(entry.name)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set: then claim nothing more, let the job in hand finish
        within ``stop_soft_seconds`` or hand it back, and return."""
        self._stop = stop
        log.info("worker %s started", self.worker_id)
        await asyncio.to_thread(self.sweep_stale_work_dirs)
        self.signal.start()
        try:
            while not stop.is_set():
                try:
                    worked = await self.run_once()
                except DatabaseUnavailable as exc:
                    # An outage is expected and logged once a poll, without a traceback.
                    log.warning("database unavailable (%s); retrying", exc)
                    worked = False
                except Exception:
                    # The database may be restarting; back off instead of dying.
                    log.exception("worker loop error; retrying")
                    worked = False
                if not worked:
                    await self._idle(stop)
        finally:
            await self.signal.stop()
        log.info("worker %s stopped", self.worker_id)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for announced work (PostgreSQL NOTIFY), a stop, or the poll interval."""
        waiters = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self.signal.wait(self.settings.poll_seconds)),
        }
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run_once(self) -> bool:
        """Rescue expired leases if due, then claim and process one job. True if one ran."""
        await self.rescue_if_due()
        claimed_at = utcnow()
        lease = await queue.claim_next_job(
            self.ctx.db, self.worker_id, claimed_at, self.settings.lease_seconds
        )
        if lease is None:
            return False
        waited = (claimed_at - lease.available_at).total_seconds()
        self.metrics.claim_latency.observe(max(0.0, waited))
        if self._stop is not None and self._stop.is_set():
            # The claim crossed the stop signal: hand the job back before any work on it.
            await self._release(lease)
            return True
        await self.process(lease)
        return True

    async def rescue_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_rescue < self.settings.heartbeat_seconds:
            return
        self._last_rescue = now
        async with self.ctx.db.write() as conn:
            counts = await queue.rescue_expired_leases(conn, utcnow())
            if counts.requeued:
                await announce_work(conn)
        if counts.requeued or counts.failed or counts.cancelled:
            log.warning("rescued expired leases: %s", counts)

    async def process(self, lease: Lease) -> None:
        """Render one claimed attempt and record its outcome (only while the lease holds)."""
        log.info("job %s attempt %d claimed by %s", lease.job_id, lease.attempt, self.worker_id)
        work_dir = self.work_root / f"{lease.job_id}-{lease.attempt}"
        state = AttemptState(asyncio.get_running_loop())
        self.held_lease = lease
        keeper = asyncio.create_task(self._keep_lease(lease, state))
        releaser = asyncio.create_task(self._release_when_overdue(lease, state))
        published: tuple[str, RenderResult] | None = None
        try:
            published = await self._render_and_finish(lease, state, work_dir)
        finally:
            keeper.cancel()
            if not state.stopping:
                releaser.cancel()  # never mid-release: a half-sent hand-back helps nobody
            for task in (keeper, releaser):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.held_lease = None
            try:
                if published is not None:
                    # The job is done and its track playable; stems follow (no lease needed).
                    await store_stems(self.ctx, lease, *published)
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)

    async def _render_and_finish(
        self, lease: Lease, state: AttemptState, work_dir: Path
    ) -> tuple[str, RenderResult] | None:
        """Render and publish; (track id, result) when the job succeeded."""
        engine = self.ctx.engines.get(lease.engine)
        if engine is None:
            await self._fail(lease, "This engine is not available any more.", retryable=False)
            return None
        await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
        request = _render_request(lease, work_dir, await self._continuation(lease))
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(engine.render, request, state.report, state.cancelled)
        except Exception as exc:
            await self._render_failed(lease, state, exc)
            return None
        if state.stopping:
            # Finished after the soft timeout: the job is being handed back, so no publishing.
            discard_stems(result)
            return None
        self.metrics.rendered(
            lease.engine, result.measured_duration_seconds, time.monotonic() - started
        )
        # An engine that cannot sing makes instrumental tracks, whatever was asked.
        instrumental = request.instrumental or not engine.capabilities().supports_vocals
        track_id: str | None = None
        state.completing = True
        try:
            track_id = await self._publish(lease, result, instrumental)
        finally:
            if track_id is None:
                discard_stems(result)
        return None if track_id is None else (track_id, result)

    async def _render_failed(self, lease: Lease, state: AttemptState, exc: Exception) -> None:
        """Record why the render ended without a result (nothing if the worker is stopping)."""
        if state.stopping:
            # A shutdown, not a user cancel or an engine fault: the releaser hands it back.
            log.info("job %s attempt %d: render stopped for shutdown", lease.job_id, lease.attempt)
        elif isinstance(exc, RenderCancelled):
            if not state.lease_lost and await queue.mark_cancelled(self.ctx.db, lease, utcnow()):
                self.metrics.attempts.labels(outcome="cancelled").inc()
            log.info("job %s stopped (cancelled=%s)", lease.job_id, state.cancel_requested)
        elif isinstance(exc, RenderError):
            await self._fail(lease, str(exc), retryable=False)
        else:
            log.error("job %s attempt %d: engine error", lease.job_id, lease.attempt, exc_info=exc)
            await self._fail(lease, GENERIC_FAILURE, retryable=True)

    async def _release_when_overdue(self, lease: Lease, state: AttemptState) -> None:
        """Once stopping, give the job ``stop_soft_seconds``; then ask the render to stop and
        hand the job back at once (a render that ignores the request can't delay that)."""
        if self._stop is None:
            return
        await self._stop.wait()
        await asyncio.sleep(self.settings.stop_soft_seconds)
        state.stopping = True
        log.warning(
            "job %s attempt %d: not done %.1f s after stop; handing it back",
            lease.job_id,
            lease.attempt,
            self.settings.stop_soft_seconds,
        )
        while True:
            try:
                await self._release(lease)
                break
            except Exception:
                # Until the process exits (stop_hard_seconds): after that the lease expires
                # and a rescuer re-queues the job.
                log.exception("job %s: hand-back failed; retrying", lease.job_id)
                await asyncio.sleep(1.0)
        state.released = True
        self.held_lease = None

    async def _release(self, lease: Lease) -> None:
        """Hand a claimed job back to the queue and wake other workers for it."""
        async with self.ctx.db.write() as conn:
            outcome = await queue.release_job(conn, lease, utcnow())
            if outcome is Outcome.RELEASED:
                await announce_work(conn)
        log.info("job %s attempt %d: %s", lease.job_id, lease.attempt, outcome.value)
        self.metrics.attempts.labels(outcome=outcome.value).inc()

    async def _publish(self, lease: Lease, result: RenderResult, instrumental: bool) -> str | None:
        """Upload and complete; the new track's id if the job succeeded."""
        try:
            return await publish_render(self.ctx, lease, result, instrumental, self.metrics)
        except StorageError:
            log.exception("job %s: upload failed", lease.job_id)
            await self._fail(lease, STORAGE_FAILURE, retryable=True)
        except CompletionUnknown:
            # The database is away: the lease will expire and the job be rescued.
            log.exception("job %s: completion could not be settled", lease.job_id)
        except Exception:
            # Never leave the job running until its lease expires for an unexpected error.
            log.exception("job %s: publishing failed", lease.job_id)
            await self._fail(lease, GENERIC_FAILURE, retryable=True)
        return None

    async def _continuation(self, lease: Lease) -> dict[str, Any] | None:
        """The recipe of the track this job continues (``seed_track_id``), if any."""
        track_id = lease.request.get("seed_track_id")
        if not track_id:
            return None
        async with self.ctx.db.read() as conn:
            return await get_track_recipe(conn, lease.org_id, lease.user_id, str(track_id))

    async def _fail(self, lease: Lease, message: str, *, retryable: bool) -> None:
        async with self.ctx.db.write() as conn:
            status = await queue.fail_or_retry(conn, lease, utcnow(), message, retryable=retryable)
        log.info("job %s attempt %d: %s", lease.job_id, lease.attempt, status or "lease lost")
        outcome = {None: "lost", QUEUED: "retried"}.get(status, status)
        self.metrics.attempts.labels(outcome=outcome).inc()

    async def _keep_lease(self, lease: Lease, state: AttemptState) -> None:
        """Heartbeat every third of the lease, and write progress as it moves."""
        last_beat = time.monotonic()
        written = -1
        while True:
            timeout = max(0.0, self.settings.heartbeat_seconds - (time.monotonic() - last_beat))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.progress_changed.wait(), timeout=timeout)
            state.progress_changed.clear()
            progress = state.progress
            due = time.monotonic() - last_beat >= self.settings.heartbeat_seconds
            if not due and progress == written:
                continue
            try:
                beat = await queue.heartbeat(
                    self.ctx.db, lease, utcnow(), self.settings.lease_seconds, progress
                )
            except Exception:
                log.exception("job %s: heartbeat failed; will retry", lease.job_id)
                await asyncio.sleep(1.0)
                continue
            last_beat = time.monotonic()
            written = progress
            if not beat.held:
                # Handed back on purpose, or done: nothing was lost.
                if not (state.released or state.completing):
                    log.warning("job %s attempt %d: lease lost", lease.job_id, lease.attempt)
                state.lease_lost = True
                return
            state.cancel_requested = beat.cancel_requested
            await asyncio.sleep(PROGRESS_WRITE_INTERVAL)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _render_request(
    lease: Lease, work_dir: Path, continuation: dict[str, Any] | None
) -> RenderRequest:
    req = lease.request
    return RenderRequest(
        job_id=lease.job_id,
        prompt=req["prompt"],
        duration_seconds=int(req["duration_seconds"]),
        work_dir=work_dir,
        mode="focus" if lease.mode == "focus" else "creation",
        instrumental=bool(req.get("instrumental", False)),
        lyrics=req.get("lyrics"),
        style_tags=tuple(req.get("style_tags") or ()),
        title=req.get("title"),
        seed=req.get("seed"),
        output_format=req.get("output_format") or "mp3",
        continuation=continuation,
        focus=_focus_segment(req.get("focus")),
    )


def _focus_segment(stored: Any) -> FocusSegment | None:
    """A focus-session segment's place in its session, as the job's request stores it."""
    if not isinstance(stored, dict):
        return None
    return FocusSegment(
        session_seed=int(stored["session_seed"]),
        index=int(stored["index"]),
        intensity=str(stored.get("intensity", "medium")),
        divergence=float(stored.get("divergence", 0.0)),
    )
