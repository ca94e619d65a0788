"""The worker loop: rescue expired leases, claim a job, render it under a heartbeat, finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from musicstudio import ids, queue
from musicstudio.clock import utcnow
from musicstudio.engines.base import (
    FocusSegment,
    RenderCancelled,
    RenderError,
    RenderRequest,
    RenderResult,
    discard_stems,
    finish_stems,
)
from musicstudio.queue import Lease, Outcome
from musicstudio.services.context import ServiceContext
from musicstudio.storage.base import StorageError
from musicstudio.store.jobs import QUEUED
from musicstudio.store.tracks import attach_stems, get_track_recipe
from musicstudio.wakeup import WorkSignal, announce_work
from musicstudio.worker.attempt import AttemptState
from musicstudio.worker.metrics import WorkerMetrics
from musicstudio.worker.upload import StoredRender, delete_objects, upload_render, upload_stems

log = logging.getLogger("musicstudio.worker")

GENERIC_FAILURE = "Rendering failed because of an internal error. Please try again."
STORAGE_FAILURE = "The finished audio could not be stored. Please try again."
PROGRESS_WRITE_INTERVAL = 0.5  # seconds between progress writes while rendering


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """One worker: processes jobs one at a time until ``stop`` is set."""

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
        log.info("worker %s started", self.worker_id)
        await asyncio.to_thread(self.sweep_stale_work_dirs)
        self.signal.start()
        try:
            while not stop.is_set():
                try:
                    worked = await self.run_once()
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
        keeper = asyncio.create_task(self._keep_lease(lease, state))
        published: tuple[str, RenderResult] | None = None
        try:
            published = await self._render_and_finish(lease, state, work_dir)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            try:
                if published is not None:
                    # The job is done and its track playable; stems follow (no lease needed).
                    await self._store_stems(lease, *published)
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
        except RenderCancelled:
            if not state.lease_lost and await queue.mark_cancelled(self.ctx.db, lease, utcnow()):
                self.metrics.attempts.labels(outcome="cancelled").inc()
            log.info("job %s stopped (cancelled=%s)", lease.job_id, state.cancel_requested)
            return None
        except RenderError as exc:
            await self._fail(lease, str(exc), retryable=False)
            return None
        except Exception:
            log.exception("job %s attempt %d: engine error", lease.job_id, lease.attempt)
            await self._fail(lease, GENERIC_FAILURE, retryable=True)
            return None
        self.metrics.rendered(
            lease.engine, result.measured_duration_seconds, time.monotonic() - started
        )
        # An engine that cannot sing makes instrumental tracks, whatever was asked.
        instrumental = request.instrumental or not engine.capabilities().supports_vocals
        track_id: str | None = None
        try:
            track_id = await self._store_result(lease, result, instrumental)
        finally:
            if track_id is None:
                discard_stems(result)
        return None if track_id is None else (track_id, result)

    async def _store_result(
        self, lease: Lease, result: RenderResult, instrumental: bool
    ) -> str | None:
        """Upload and complete the job; the new track's id if the job succeeded."""
        track_id = ids.new_id(ids.TRACK)
        storage = self.ctx.storage
        try:
            stored = await asyncio.to_thread(upload_render, storage, lease.org_id, track_id, result)
        except StorageError:
            log.exception("job %s: upload failed", lease.job_id)
            await self._fail(lease, STORAGE_FAILURE, retryable=True)
            return None
        now = utcnow()
        track = _track_values(lease, result, track_id, stored, now, instrumental)
        try:
            outcome = await queue.complete_job(self.ctx.db, lease, now, track)
        except Exception:
            await asyncio.to_thread(delete_objects, storage, stored.keys)
            raise
        log.info("job %s attempt %d: %s", lease.job_id, lease.attempt, outcome.value)
        self.metrics.attempts.labels(outcome=outcome.value).inc()
        if outcome is not Outcome.SUCCEEDED:
            # Nobody will ever point at these objects: a cancelled or stolen attempt.
            await asyncio.to_thread(delete_objects, storage, stored.keys)
            return None
        return track_id

    async def _store_stems(self, lease: Lease, track_id: str, result: RenderResult) -> None:
        """Write, upload and attach stems the engine deferred. A failure here costs the
        track its stems only: the job has succeeded and the master is published."""
        if result.deferred_stems is None:
            return
        storage = self.ctx.storage
        started = time.monotonic()
        try:
            files = await asyncio.to_thread(finish_stems, result)
            stored = await asyncio.to_thread(upload_stems, storage, lease.org_id, track_id, files)
        except Exception:
            log.exception("job %s: stems could not be written or stored", lease.job_id)
            return
        try:
            async with self.ctx.db.write() as conn:
                attached = await attach_stems(conn, track_id, stored.stems)
        except Exception:
            log.exception("job %s: stems could not be recorded", lease.job_id)
            attached = False
        if not attached:
            log.warning("job %s: track %s is gone; its stems are removed", lease.job_id, track_id)
            await asyncio.to_thread(delete_objects, storage, stored.keys)
            return
        log.info(
            "job %s: %d stems stored in %.2f s",
            lease.job_id,
            len(stored.stems),
            time.monotonic() - started,
        )

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


def _track_values(
    lease: Lease,
    result: RenderResult,
    track_id: str,
    stored: StoredRender,
    now: datetime,
    instrumental: bool,
) -> dict[str, Any]:
    return {
        "id": track_id,
        "org_id": lease.org_id,
        "user_id": lease.user_id,
        "job_id": lease.job_id,
        "title": result.title[:200],
        "engine": lease.engine,
        "mode": lease.mode,
        "instrumental": instrumental,
        "measured_duration_seconds": result.measured_duration_seconds,
        "mime_type": result.mime_type,
        "storage_key": stored.master_key,
        "size_bytes": stored.size_bytes,
        "stems": stored.stems or None,
        "midi_key": stored.midi_key,
        "licence_class": result.licence.licence_class,
        "licence_version": result.licence.licence_version,
        "commercial_use": result.licence.commercial_use,
        "requires_attribution": result.licence.requires_attribution,
        "recipe": result.recipe,
        "created_at": now,
    }
