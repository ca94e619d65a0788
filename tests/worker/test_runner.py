"""The worker in process, with the real studio engine and with misbehaving plug-ins."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from sqlalchemy import select, update

from musicstudio import queue
from musicstudio.clock import utcnow
from musicstudio.db.tables import tracks
from musicstudio.engines.base import (
    CancelledFn,
    DeferredStems,
    EngineCapabilities,
    Licence,
    ProgressFn,
    RenderCancelled,
    RenderError,
    RenderRequest,
    RenderResult,
)
from musicstudio.engines.registry import EngineRegistry
from musicstudio.queue import Outcome
from musicstudio.services import generations
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import NewGeneration
from musicstudio.store.accounts import Principal
from musicstudio.worker.runner import GENERIC_FAILURE, Worker
from tests.conftest import Caller
from tests.helpers import job_row


def _principal(caller: Caller) -> Principal:
    return Principal(org_id=caller.org_id, user_id=caller.user_id, key_id="k")


async def _submit(
    ctx: ServiceContext, caller: Caller, engine: str = "studio", duration: int = 2
) -> str:
    req = NewGeneration(engine=engine, prompt="upbeat house groove", duration_seconds=duration)
    result = await generations.create_job(ctx, _principal(caller), req, None, "http://t")
    return str(result["id"])


async def test_worker_renders_stores_and_completes(ctx: ServiceContext, alice: Caller) -> None:
    job_id = await _submit(ctx, alice, duration=3)
    assert await Worker(ctx).run_once()
    row = await job_row(ctx, job_id)
    assert row["status"] == "succeeded" and row["progress"] == 100 and row["attempt"] == 1
    async with ctx.db.read() as conn:
        track = (await conn.execute(select(tracks).where(tracks.c.job_id == job_id))).one()
    assert track.id == row["result_track_id"]
    path = ctx.storage.path_for(track.storage_key)
    info = sf.info(str(path))
    assert abs(info.duration - 3.0) <= 0.05
    assert abs(track.measured_duration_seconds - 3.0) <= 0.05
    assert track.size_bytes == path.stat().st_size
    assert track.recipe, "the plan is kept with the track"
    # Stems and the MIDI are stored beside the master, each the track's length.
    assert track.stems and {"drums", "bass"} <= set(track.stems)
    for name, stem in track.stems.items():
        stem_path = ctx.storage.path_for(stem["storage_key"])
        assert stem["size_bytes"] == stem_path.stat().st_size, name
        assert abs(sf.info(str(stem_path)).duration - 3.0) <= 0.05, name
    assert track.midi_key and ctx.storage.path_for(track.midi_key).read_bytes()[:4] == b"MThd"
    assert not any(Worker(ctx).work_root.iterdir()), "work dir cleaned"


async def test_scratch_of_dead_workers_is_swept(ctx: ServiceContext) -> None:
    root = ctx.settings.data_dir / "work"
    stale = root / "999999999" / "mgen_x-1"  # above any pid_max: never a live process
    stale.mkdir(parents=True)
    (stale / "half.mp3").write_bytes(b"partial")
    worker = Worker(ctx)
    worker.work_root.mkdir(parents=True, exist_ok=True)
    assert worker.sweep_stale_work_dirs() == [root / "999999999"]
    assert worker.work_root.is_dir(), "a live process's scratch is kept"


async def test_progress_seen_by_clients_only_grows(ctx: ServiceContext, alice: Caller) -> None:
    job_id = await _submit(ctx, alice, duration=60)
    seen: list[int] = []
    worker = asyncio.create_task(Worker(ctx).run_once())
    while not worker.done():
        seen.append(int((await job_row(ctx, job_id))["progress"]))
        await asyncio.sleep(0.02)
    await worker
    seen.append(int((await job_row(ctx, job_id))["progress"]))
    assert seen == sorted(seen)
    assert seen[-1] == 100
    assert len({p for p in seen if 0 < p < 100}) >= 2, f"progress reported while running: {seen}"


async def test_cancel_while_rendering_stops_at_a_checkpoint(
    ctx: ServiceContext, alice: Caller
) -> None:
    job_id = await _submit(ctx, alice, duration=300)
    worker = asyncio.create_task(Worker(ctx).run_once())
    for _ in range(500):
        if (await job_row(ctx, job_id))["status"] == "running":
            break
        await asyncio.sleep(0.01)
    cancelled = await generations.cancel_job(ctx, _principal(alice), job_id, "http://t")
    assert cancelled["status"] in ("running", "cancelled")
    await asyncio.wait_for(worker, timeout=60)
    row = await job_row(ctx, job_id)
    assert row["status"] == "cancelled"
    assert row["result_track_id"] is None
    async with ctx.db.read() as conn:
        assert (await conn.execute(select(tracks))).first() is None
    media = ctx.storage.root
    assert not any(p.is_file() for p in media.rglob("*")), "nothing stored for a cancelled job"


class _Engine:
    """A plug-in whose render misbehaves on purpose."""

    def __init__(self, key: str, error: Exception) -> None:
        self.key = key
        self.error = error
        self.calls = 0

    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(
            engine_key=self.key,
            name=self.key,
            description="test plug-in",
            modes=("creation",),
            max_duration_seconds=10,
            supports_vocals=False,
            supports_lyrics=False,
            supports_stems=False,
            supported_languages=(),
            output_formats=("mp3",),
            licence=Licence("unclear", "test", False, True),
        )

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        self.calls += 1
        progress(30)
        raise self.error


def _with_engines(ctx: ServiceContext, *engines: _Engine) -> ServiceContext:
    registry = EngineRegistry(
        {**{e.key: e for e in ctx.engines.all()}, **{e.key: e for e in engines}}
    )
    return replace(ctx, engines=registry, settings=replace(ctx.settings, poll_seconds=0.01))


async def _drain(ctx: ServiceContext, job_id: str) -> dict[str, object]:
    worker = Worker(ctx)
    for _ in range(200):
        await worker.run_once()
        row = await job_row(ctx, job_id)
        if row["status"] in ("succeeded", "failed", "cancelled"):
            return row
        await asyncio.sleep(0.05)  # retries wait for their back-off delay
    raise AssertionError("job never finished")


async def test_unexpected_engine_errors_retry_then_fail_safely(
    ctx: ServiceContext, alice: Caller
) -> None:
    engine = _Engine("flaky", RuntimeError("segfault-ish at /opt/secret/file.py"))
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="flaky")
    row = await _drain(ctx, job_id)
    assert row["status"] == "failed"
    assert engine.calls == 3 and row["attempt"] == 3
    assert row["error_message"] == GENERIC_FAILURE
    assert int(row["progress"]) < 100, "100 only on success"


async def test_user_safe_engine_errors_fail_at_once(ctx: ServiceContext, alice: Caller) -> None:
    engine = _Engine("picky", RenderError("This prompt cannot be rendered."))
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="picky")
    row = await _drain(ctx, job_id)
    assert row["status"] == "failed" and engine.calls == 1
    assert row["error_message"] == "This prompt cannot be rendered."


class _Recorder(_Engine):
    """Succeeds with a copy of a real render, remembering the request it got."""

    def __init__(self, key: str, audio: Path) -> None:
        super().__init__(key, RuntimeError("unused"))
        self.audio = audio
        self.requests: list[RenderRequest] = []

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        self.requests.append(request)
        out = request.work_dir / "copy.mp3"
        out.write_bytes(self.audio.read_bytes())
        return RenderResult(
            audio_path=out,
            mime_type="audio/mpeg",
            measured_duration_seconds=2.0,
            title="copy",
            licence=Licence("unclear", "test", False, True),
            recipe={"from": "recorder"},
        )


async def test_worker_records_claim_latency_render_speed_and_outcomes(
    ctx: ServiceContext, alice: Caller
) -> None:
    engine = _Recorder("recorder", await _master_path(ctx, alice))
    ctx = _with_engines(ctx, engine)
    submitted = utcnow()
    await _submit(ctx, alice, engine="recorder")
    worker = Worker(ctx)
    assert await worker.run_once()
    waited = (utcnow() - submitted).total_seconds()
    registry = worker.metrics.registry

    def sample(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, labels)
        assert value is not None, name
        return value

    assert sample("musicstudio_job_claim_latency_seconds_count") == 1
    assert 0 <= sample("musicstudio_job_claim_latency_seconds_sum") <= waited
    assert sample("musicstudio_render_realtime_factor_count", engine="recorder") == 1
    render_seconds = sample("musicstudio_render_duration_seconds_sum", engine="recorder")
    rtf = sample("musicstudio_render_realtime_factor_sum", engine="recorder")
    assert rtf == pytest.approx(2.0 / render_seconds), "the recorder's 2 s of audio"
    assert sample("musicstudio_worker_attempts_total", outcome="succeeded") == 1

    picky = _Engine("picky", RenderError("This prompt cannot be rendered."))
    ctx = _with_engines(ctx, picky)
    worker.ctx = ctx
    await _submit(ctx, alice, engine="picky")
    assert await worker.run_once()
    assert sample("musicstudio_worker_attempts_total", outcome="failed") == 1


async def test_seed_track_recipe_reaches_the_engine(ctx: ServiceContext, alice: Caller) -> None:
    first = await _submit(ctx, alice)
    assert await Worker(ctx).run_once()
    seed = await job_row(ctx, first)
    async with ctx.db.read() as conn:
        track = (
            await conn.execute(select(tracks).where(tracks.c.id == seed["result_track_id"]))
        ).one()
    recorder = _Recorder("recorder", ctx.storage.path_for(track.storage_key))
    ctx = _with_engines(ctx, recorder)
    req = NewGeneration(
        engine="recorder",
        prompt="more of that",
        duration_seconds=2,
        seed_track_id=str(seed["result_track_id"]),
    )
    await generations.create_job(ctx, _principal(alice), req, None, "http://t")
    assert await Worker(ctx).run_once()
    [request] = recorder.requests
    assert request.continuation == track.recipe
    assert request.continuation and request.continuation["engine"] == "studio"


class _StemsLater(_Recorder):
    """Succeeds with a master and deferred stems whose writing may fail."""

    def __init__(self, key: str, audio: Path, *, stems_fail: bool) -> None:
        super().__init__(key, audio)
        self.stems_fail = stems_fail
        self.made = 0
        self.discarded = 0

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        result = super().render(request, progress, cancelled)

        def make() -> dict[str, Path]:
            self.made += 1
            if self.stems_fail:
                raise OSError("disk full")
            stem = request.work_dir / "bass.flac"
            stem.write_bytes(b"fLaC-not-really")
            return {"bass": stem}

        def discard() -> None:
            self.discarded += 1

        result.deferred_stems = DeferredStems(("bass",), make, discard)
        return result


async def _master_path(ctx: ServiceContext, alice: Caller) -> Path:
    first = await _submit(ctx, alice)
    assert await Worker(ctx).run_once()
    row = await job_row(ctx, first)
    async with ctx.db.read() as conn:
        key = (
            await conn.execute(
                select(tracks.c.storage_key).where(tracks.c.id == row["result_track_id"])
            )
        ).scalar_one()
    return ctx.storage.path_for(key)


async def _track_of(ctx: ServiceContext, job_id: str) -> Any:
    async with ctx.db.read() as conn:
        return (await conn.execute(select(tracks).where(tracks.c.job_id == job_id))).one()


async def test_deferred_stems_are_attached_after_the_job_succeeds(
    ctx: ServiceContext, alice: Caller
) -> None:
    engine = _StemsLater("later", await _master_path(ctx, alice), stems_fail=False)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="later")
    assert await Worker(ctx).run_once()
    assert (await job_row(ctx, job_id))["status"] == "succeeded"
    track = await _track_of(ctx, job_id)
    assert engine.made == 1 and engine.discarded == 0
    assert set(track.stems) == {"bass"}
    stem = track.stems["bass"]
    assert stem["mime_type"] == "audio/flac"
    assert ctx.storage.path_for(stem["storage_key"]).read_bytes() == b"fLaC-not-really"


async def test_failed_deferred_stems_leave_a_published_track_without_stems(
    ctx: ServiceContext, alice: Caller
) -> None:
    engine = _StemsLater("broken-stems", await _master_path(ctx, alice), stems_fail=True)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="broken-stems")
    assert await Worker(ctx).run_once()
    row = await job_row(ctx, job_id)
    assert row["status"] == "succeeded" and row["attempt"] == 1, "the job is not retried"
    track = await _track_of(ctx, job_id)
    assert engine.made == 1 and not track.stems
    assert ctx.storage.path_for(track.storage_key).is_file()
    assert not list(ctx.storage.root.rglob(f"{track.id}/stems/*")), "no half-stored stems"
    assert not any(Worker(ctx).work_root.iterdir()), "work dir cleaned"


async def test_deferred_stems_are_discarded_when_the_job_does_not_succeed(
    ctx: ServiceContext, alice: Caller, monkeypatch: Any
) -> None:
    engine = _StemsLater("dropped", await _master_path(ctx, alice), stems_fail=False)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="dropped")

    async def cancelled_meanwhile(*args: object, **kwargs: object) -> Outcome:
        return Outcome.CANCELLED

    monkeypatch.setattr(queue, "complete_job", cancelled_meanwhile)
    assert await Worker(ctx).run_once()
    assert engine.made == 0 and engine.discarded == 1
    async with ctx.db.read() as conn:
        assert (await conn.execute(select(tracks).where(tracks.c.job_id == job_id))).first() is None


async def test_a_focus_segment_job_renders_its_sessions_segment(
    ctx: ServiceContext, alice: Caller
) -> None:
    from musicstudio.db.tables import generation_jobs
    from musicstudio.engines.studio.focus import plan_focus_segment

    job_id = await _submit(ctx, alice, duration=4)
    segment = {"session_seed": 99, "index": 2, "intensity": "low", "divergence": 0.2}
    async with ctx.db.write() as conn:
        row = (await conn.execute(select(generation_jobs.c.request).where(
            generation_jobs.c.id == job_id))).scalar_one()  # fmt: skip
        await conn.execute(
            update(generation_jobs)
            .where(generation_jobs.c.id == job_id)
            .values(mode="focus", request={**row, "focus": segment})
        )
    assert await Worker(ctx).run_once()
    async with ctx.db.read() as conn:
        track = (await conn.execute(select(tracks).where(tracks.c.job_id == job_id))).one()
    expected = plan_focus_segment(
        99, 2, goal_prompt="upbeat house groove", duration_seconds=4, intensity="low",
        divergence=0.2,
    )  # fmt: skip
    assert track.mode == "focus"
    assert track.recipe["tempo_bpm"] == expected.tempo_bpm
    assert track.recipe["key"] == expected.key_name and track.recipe["seed"] == expected.seed


class _Slow(_Recorder):
    """Renders for ``seconds``, checking ``cancelled()`` between steps only if ``polite``."""

    def __init__(self, key: str, audio: Path, seconds: float, *, polite: bool) -> None:
        super().__init__(key, audio)
        self.seconds = seconds
        self.polite = polite
        self.started = threading.Event()
        self.saw_cancel = False

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        self.started.set()
        progress(10)
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            if self.polite and cancelled():
                self.saw_cancel = True
                raise RenderCancelled()
            time.sleep(0.01)
        return super().render(request, progress, cancelled)


async def _stop_while_rendering(
    ctx: ServiceContext, engine: _Slow, *, soft: float
) -> tuple[Worker, asyncio.Task[None]]:
    """Run a worker and stop it once ``engine`` is rendering; ``run`` is still going."""
    ctx = replace(ctx, settings=replace(ctx.settings, stop_soft_seconds=soft))
    worker, stop = Worker(ctx), asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    assert await asyncio.to_thread(engine.started.wait, 30), "the render never started"
    stop.set()
    return worker, running


def _outcomes(worker: Worker) -> dict[str, float]:
    """The worker's attempts counter, by outcome (only outcomes that happened)."""
    return {
        sample.labels["outcome"]: sample.value
        for metric in worker.metrics.registry.collect()
        if metric.name == "musicstudio_worker_attempts"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.value
    }


def _fake_master(tmp_path: Path) -> Path:
    audio = tmp_path / "fake.mp3"
    audio.write_bytes(b"ID3" + bytes(256))
    return audio


async def test_stop_lets_the_job_in_hand_finish_and_claims_nothing_more(
    ctx: ServiceContext, alice: Caller, tmp_path: Path
) -> None:
    engine = _Slow("slow", _fake_master(tmp_path), 0.5, polite=True)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="slow")
    waiting = await _submit(ctx, alice, engine="slow")
    worker, running = await _stop_while_rendering(ctx, engine, soft=30)
    await asyncio.wait_for(running, timeout=30)
    assert (await job_row(ctx, job_id))["status"] == "succeeded"
    later = await job_row(ctx, waiting)
    assert (later["status"], later["attempt"]) == ("queued", 0), "no claim after the stop"
    assert _outcomes(worker) == {"succeeded": 1}
    assert worker.held_lease is None


async def test_a_job_still_rendering_at_the_soft_timeout_is_handed_back(
    ctx: ServiceContext, alice: Caller, tmp_path: Path
) -> None:
    engine = _Slow("slow", _fake_master(tmp_path), 60, polite=True)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="slow")
    worker, running = await _stop_while_rendering(ctx, engine, soft=0.2)
    await asyncio.wait_for(running, timeout=30)  # far less than the render's 60 s
    assert engine.saw_cancel, "the render was asked to stop through cancelled()"
    row = await job_row(ctx, job_id)
    assert row["status"] == "queued", "a shutdown is not a user cancel"
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert row["max_attempts"] - row["attempt"] == 3, "the attempt is not used up"
    assert _outcomes(worker) == {"released": 1}
    assert worker.held_lease is None
    assert not any(worker.work_root.iterdir()), "work dir cleaned"


async def test_a_render_ignoring_the_stop_is_handed_back_and_its_result_dropped(
    ctx: ServiceContext, alice: Caller, tmp_path: Path
) -> None:
    engine = _Slow("deaf", _fake_master(tmp_path), 2.0, polite=False)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="deaf")
    worker, running = await _stop_while_rendering(ctx, engine, soft=0.1)
    deadline = time.monotonic() + 10
    while (await job_row(ctx, job_id))["status"] != "queued":
        assert time.monotonic() < deadline, "the job was never handed back"
        await asyncio.sleep(0.02)
    assert not engine.requests, "handed back without waiting for the render to end"
    assert worker.held_lease is None
    await asyncio.wait_for(running, timeout=30)
    assert engine.requests, "the render did run to its end"
    row = await job_row(ctx, job_id)
    assert (row["status"], row["lease_owner"], row["result_track_id"]) == ("queued", None, None)
    assert _outcomes(worker) == {"released": 1}
    async with ctx.db.read() as conn:
        assert (await conn.execute(select(tracks))).first() is None
    assert not any(p.is_file() for p in ctx.storage.root.rglob("*")), "nothing published"


async def test_a_claim_that_crosses_the_stop_is_handed_back_unrendered(
    ctx: ServiceContext, alice: Caller, tmp_path: Path, monkeypatch: Any
) -> None:
    engine = _Slow("slow", _fake_master(tmp_path), 0.1, polite=True)
    ctx = _with_engines(ctx, engine)
    job_id = await _submit(ctx, alice, engine="slow")
    worker, stop = Worker(ctx), asyncio.Event()
    claim = queue.claim_next_job

    async def claim_then_signal(*args: Any) -> queue.Lease | None:
        lease = await claim(*args)
        stop.set()  # the signal arrives while the claim statement runs
        return lease

    monkeypatch.setattr(queue, "claim_next_job", claim_then_signal)
    await asyncio.wait_for(worker.run(stop), timeout=30)
    assert not engine.started.is_set()
    row = await job_row(ctx, job_id)
    assert (row["status"], row["lease_owner"]) == ("queued", None)
    assert row["max_attempts"] - row["attempt"] == 3
    assert _outcomes(worker) == {"released": 1}
