"""Real worker processes stopped with SIGTERM: no claims after it, the job in hand finishes
within the soft timeout or goes back to the queue, and the process exits within soft + hard."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import update

from musicstudio.clock import utcnow
from musicstudio.config import Settings
from musicstudio.db.tables import generation_jobs
from musicstudio.services.context import ServiceContext
from musicstudio.worker.supervisor import STOP_MARGIN_SECONDS
from tests.conftest import Caller
from tests.helpers import insert_job_rows, job_row
from tests.postgres import throwaway_database
from tests.processes import cli_env, log_tail, start_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

T = TypeVar("T")

# Interpreter start-up and tear-down on a busy 2-core machine, on top of a promised bound.
EXIT_MARGIN = 3.0

# Engines whose render takes as many seconds as the prompt says; "stubborn" never looks at
# ``cancelled()``, like a native render loop that cannot be interrupted.
PLUGIN = """
import time

from musicstudio.engines.base import EngineCapabilities, Licence, RenderCancelled, RenderResult

LICENCE = Licence("unclear", "test", False, True)


class Patient:
    key = "patient"

    def __init__(self, settings):
        self.settings = settings

    def capabilities(self):
        return EngineCapabilities(
            engine_key=self.key, name=self.key, description="takes its time",
            modes=("creation",), max_duration_seconds=600, supports_vocals=False,
            supports_lyrics=False, supports_stems=False, supported_languages=(),
            output_formats=("mp3",), licence=LICENCE,
        )

    def render(self, request, progress, cancelled):
        progress(5)
        self.work(float(request.prompt), cancelled)
        master = request.work_dir / "master.mp3"
        master.write_bytes(b"ID3" + bytes(256))
        return RenderResult(master, "audio/mpeg", 1.0, "stand-in", LICENCE)

    def work(self, seconds, cancelled):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if cancelled():
                raise RenderCancelled()
            time.sleep(0.05)


class Stubborn(Patient):
    key = "stubborn"

    def work(self, seconds, cancelled):
        time.sleep(seconds)
"""


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distribution on PYTHONPATH declaring the two engines as entry points."""
    root = tmp_path_factory.mktemp("plugins")
    (root / "stopplug.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "stopplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stopplug\nVersion: 1.0\n")
    points = "patient = stopplug:Patient\nstubborn = stopplug:Stubborn\n"
    (dist / "entry_points.txt").write_text(f"[musicstudio.engines]\n{points}")
    return root


@pytest.fixture
def settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The root fixture's SQLite settings; with ``indirect`` "postgresql", a fresh PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield settings
        return
    with throwaway_database() as url:
        yield replace(settings, database_url=url)


@dataclass
class Proc:
    """A worker process started for a test, with its log."""

    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def assert_alive(self) -> None:
        assert self.popen.poll() is None, f"exited early\n{log_tail(self.log)}"

    def owns(self, row: dict[str, Any]) -> bool:
        return row["status"] == "running" and f":{self.popen.pid}:" in str(row["lease_owner"])

    async def started(self, loops: int = 1) -> None:
        """Wait until ``loops`` worker loops of this process (or its children) run."""

        async def check() -> bool:
            self.assert_alive()
            return self.text().count(" started\n") >= loops

        await _until(check, 60, f"{self.log.name} to start")

    async def stop(self, within: float) -> tuple[int, float]:
        """SIGTERM; the exit status and seconds until exit (failing after ``within`` + margin)."""
        signalled = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self.popen.wait, within + EXIT_MARGIN)
        except subprocess.TimeoutExpired as exc:
            self.popen.kill()
            tail = log_tail(self.log)
            raise AssertionError(f"still running {within} s after SIGTERM\n{tail}") from exc
        return code, time.monotonic() - signalled


@pytest.fixture
def start(settings: Settings, plugins: Path, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start ``musicstudio worker`` (extra CLI args, env overrides) on the test's database."""
    procs: list[Proc] = []

    def starter(*args: str, **env: str) -> Proc:
        log = tmp_path / f"worker-{len(procs)}.log"
        environment = cli_env(
            settings.data_dir,
            MUSICSTUDIO_DATABASE_URL=settings.database_url,
            PYTHONPATH=str(plugins),
            **env,
        )
        procs.append(Proc(start_cli(["worker", *args], environment, log), log))
        return procs[-1]

    yield starter
    for proc in procs:  # a failed test leaves nothing behind
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()


async def _until(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Poll an async ``check`` until it returns something truthy, failing at the deadline."""
    deadline = time.monotonic() + within
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def _submit(ctx: ServiceContext, caller: Caller, engine: str, seconds: float) -> str:
    """A queued job for a test engine whose render takes ``seconds``."""
    [job_id] = await insert_job_rows(ctx, caller.org_id, caller.user_id, 1, created_at=utcnow())
    request = {"prompt": str(seconds), "duration_seconds": 1}
    async with ctx.db.write() as conn:
        await conn.execute(
            update(generation_jobs)
            .where(generation_jobs.c.id == job_id)
            .values(engine=engine, request=request)
        )
    return job_id


async def _claimed(ctx: ServiceContext, job_id: str, *procs: Proc) -> Proc | None:
    """Which of ``procs`` holds the job's lease now (they must all be alive)."""
    row = await job_row(ctx, job_id)
    for proc in procs:
        proc.assert_alive()
    return next((proc for proc in procs if proc.owns(row)), None)


def _timeouts(soft: float, hard: float) -> dict[str, str]:
    return {"MUSICSTUDIO_STOP_SOFT_SECONDS": str(soft), "MUSICSTUDIO_STOP_HARD_SECONDS": str(hard)}


def _back_in_queue(row: dict[str, Any], attempts_left: int = 3) -> None:
    assert row["status"] == "queued", row
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert row["max_attempts"] - row["attempt"] == attempts_left, row


def _never_rendered(worker: Proc, row: dict[str, Any]) -> None:
    """A job submitted after the signal: untouched, or (if a claim statement already under
    way took it) handed straight back with its attempts intact, never rendered."""
    _back_in_queue(row)
    assert f"job {row['id']} attempt 1 claimed" not in worker.text()


async def test_idle_worker_exits_at_once_and_claims_nothing_after_the_signal(
    ctx: ServiceContext, alice: Caller, start: Callable[..., Proc]
) -> None:
    soft, hard = 30.0, 10.0
    worker = start(**_timeouts(soft, hard))
    await worker.started()
    signalled = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    late = await _submit(ctx, alice, "patient", 0.1)
    code = await asyncio.to_thread(worker.popen.wait, soft + hard + EXIT_MARGIN)
    took = time.monotonic() - signalled
    assert code == 0, worker.text()
    assert took < soft, f"an idle worker must not wait out the soft timeout ({took:.1f} s)"
    _never_rendered(worker, await job_row(ctx, late))


async def test_a_short_job_finishes_and_the_worker_exits_cleanly(
    ctx: ServiceContext, alice: Caller, start: Callable[..., Proc]
) -> None:
    soft, hard = 20.0, 5.0
    job_id = await _submit(ctx, alice, "patient", 3)
    worker = start(**_timeouts(soft, hard))
    await _until(lambda: _claimed(ctx, job_id, worker), 60, "the worker to claim the job")
    signalled = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    late = await _submit(ctx, alice, "patient", 0.1)
    code = await asyncio.to_thread(worker.popen.wait, soft + hard + EXIT_MARGIN)
    took = time.monotonic() - signalled
    assert code == 0, worker.text()
    assert took <= soft + hard + EXIT_MARGIN
    row = await job_row(ctx, job_id)
    assert (row["status"], row["attempt"], row["progress"]) == ("succeeded", 1, 100)
    assert row["result_track_id"] is not None
    _never_rendered(worker, await job_row(ctx, late))


@pytest.mark.parametrize("settings", ["sqlite", "postgresql"], indirect=True)
async def test_a_long_render_is_handed_back_and_another_worker_takes_it_at_once(
    ctx: ServiceContext, alice: Caller, settings: Settings, start: Callable[..., Proc]
) -> None:
    soft, hard = 1.0, 5.0
    job_id = await _submit(ctx, alice, "patient", 120)
    # On PostgreSQL idle workers poll every 30 s here: only a wake-up can be in time.
    poll = "0.1" if settings.database_url.startswith("sqlite") else "30"
    pair = [start(**_timeouts(soft, hard), MUSICSTUDIO_POLL_SECONDS=poll) for _ in range(2)]
    first = await _until(lambda: _claimed(ctx, job_id, *pair), 60, "a worker to claim it")
    [second] = [proc for proc in pair if proc is not first]
    await second.started()

    code, took = await first.stop(soft + hard)
    assert code == 0, first.text()
    assert took <= soft + hard + EXIT_MARGIN
    assert "render stopped for shutdown" in first.text(), "asked to stop through cancelled()"
    await _until(lambda: _claimed(ctx, job_id, second), 10, "the other worker to take it")
    row = await job_row(ctx, job_id)
    assert row["attempt"] == 2 and row["max_attempts"] == 4, "the first attempt is not counted"

    code, took = await second.stop(soft + hard)
    assert code == 0, second.text()
    assert took <= soft + hard + EXIT_MARGIN
    _back_in_queue(await job_row(ctx, job_id))


async def test_a_render_that_ignores_the_stop_is_handed_back_and_the_process_exits(
    ctx: ServiceContext, alice: Caller, start: Callable[..., Proc]
) -> None:
    soft, hard = 1.0, 2.0
    job_id = await _submit(ctx, alice, "stubborn", 120)
    worker = start(**_timeouts(soft, hard))
    await _until(lambda: _claimed(ctx, job_id, worker), 60, "the worker to claim the job")
    code, took = await worker.stop(soft + hard)
    assert code == 0, worker.text()
    assert took <= soft + hard + EXIT_MARGIN
    assert "exiting (leases left to expire: [])" in worker.text()
    _back_in_queue(await job_row(ctx, job_id))


async def test_when_the_hand_back_fails_the_lease_expires_and_the_job_is_rescued(
    ctx: ServiceContext, alice: Caller, settings: Settings, start: Callable[..., Proc]
) -> None:
    soft, hard = 1.0, 2.0
    env = {**_timeouts(soft, hard), "MUSICSTUDIO_LEASE_SECONDS": "3"}
    pair = [start(**env) for _ in range(2)]
    for proc in pair:
        await proc.started()
    job_id = await _submit(ctx, alice, "stubborn", 120)
    first = await _until(lambda: _claimed(ctx, job_id, *pair), 30, "a worker to claim it")
    [rescuer] = [proc for proc in pair if proc is not first]
    # Another process holds SQLite's write lock: the hand-back can't commit before the exit.
    lock = sqlite3.connect(settings.data_dir / "musicstudio.db", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        code, took = await first.stop(soft + hard)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert code == 1, "a lease was left behind"
    assert took <= soft + hard + EXIT_MARGIN
    assert f"leases left to expire: ['{job_id}']" in first.text()

    await _until(lambda: _claimed(ctx, job_id, rescuer), 30, "the rescue and a new claim")
    assert "rescued expired leases: RescueCounts(requeued=1" in rescuer.text()
    row = await job_row(ctx, job_id)
    assert row["attempt"] == 2 and row["max_attempts"] == 3, "counted like a crash"
    code, _ = await rescuer.stop(soft + hard)
    assert code == 0, rescuer.text()
    _back_in_queue(await job_row(ctx, job_id), attempts_left=2)


async def test_a_worker_pool_hands_back_and_exits_within_its_bound(
    ctx: ServiceContext, alice: Caller, start: Callable[..., Proc]
) -> None:
    soft, hard = 1.0, 2.0
    job_id = await _submit(ctx, alice, "stubborn", 120)
    pool = start("--concurrency", "2", **_timeouts(soft, hard))
    await pool.started(loops=2)
    children = _child_pids(pool.text())
    row = await _until(lambda: _running(ctx, job_id), 30, "a pool worker to claim the job")
    assert any(f":{pid}:" in row["lease_owner"] for pid in children)

    code, took = await pool.stop(soft + hard + STOP_MARGIN_SECONDS)
    assert code == 0, pool.text()
    assert took <= soft + hard + STOP_MARGIN_SECONDS + EXIT_MARGIN
    assert not [pid for pid in children if _alive(pid)], "every child exited"
    assert "exiting (leases left to expire: [])" in pool.text()
    _back_in_queue(await job_row(ctx, job_id))


async def _running(ctx: ServiceContext, job_id: str) -> dict[str, Any] | None:
    row = await job_row(ctx, job_id)
    return row if row["status"] == "running" else None


def _child_pids(log: str) -> list[int]:
    """The worker processes a supervisor started, from its log."""
    return [int(pid) for pid in re.findall(r"worker \d+ started \(pid (\d+)\)", log)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
