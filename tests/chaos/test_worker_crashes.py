"""No job lost, none completed twice, when workers crash: four worker processes are killed
with SIGKILL at random (a seeded schedule, every 1-3 s; three kills in four wait up to 2 s
for a worker in the middle of a job) and restarted at once while jobs submitted through the
HTTP API run; the history checker (``history.py``) then classifies every job.

Reproduce a run with ``MUSICSTUDIO_CHAOS_SEED=<the seed it printed>`` (the schedule and the
jobs repeat; process timing, and so which workers are up to be killed, does not).
``MUSICSTUDIO_TEST_SCALE=soak`` runs 500 jobs.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from musicstudio.db.migrate import upgrade
from musicstudio.db.tables import generation_jobs, tracks
from tests.chaos.cluster import ChaosCluster
from tests.chaos.history import History, JobRow, TrackRow, Verdict, check
from tests.helpers import job_body
from tests.postgres import throwaway_database
from tests.processes import cli_env, wait_for
from tests.scale import scaled

pytestmark = pytest.mark.e2e

JOBS = scaled(150, 500)
WORKERS = 4
# A killed worker's job is rescued within about this long. Not shorter: a worker starved of
# CPU for a whole lease would lose its job without being killed (an execution over budget).
LEASE_SECONDS = 3
# High enough that kills alone cannot use up a job's attempts at these sizes (a job would
# have to be hit on each of its 10 attempts), so every job must end up succeeded.
MAX_ATTEMPTS = 10
KILL_EVERY = (1.0, 3.0)  # seconds between kills, uniform
SUBMIT_SECONDS = 30  # jobs are submitted evenly over at least this long
# Kills stop when no job remains, or after this long (then the rest drains without them):
# each restart costs a worker ~2 s of CPU, so on a busy 2-core machine the kills would
# otherwise stretch the run several-fold. The soak run kills until the end.
CHAOS_SECONDS = scaled(60, 1500)
DRAIN_SECONDS = 120
# Kills that caught a worker in a job (either phase), and mid-render (so the job ran again):
# fewer and the run proved little. The pacing and the aim of the kills make ~10+ usual.
MIN_HITS, MIN_RENDER_HITS = 5, 1
PROMPTS = (
    "calm lo-fi beat with soft piano",
    "upbeat house groove",
    "slow ambient pads",
    "jazzy swing trio",
    "driving rock riff",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "postgresql":
        with throwaway_database() as url:
            yield url
        return
    (tmp_path / "data").mkdir()
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'musicstudio.db'}"
    upgrade(url)
    yield url


@pytest.mark.timeout(scaled(480, 2400))
def test_no_job_lost_or_completed_twice_when_workers_are_killed(
    database_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("MUSICSTUDIO_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nchaos seed {seed} ({JOBS} jobs, {WORKERS} workers)")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    env = cli_env(
        data_dir,
        MUSICSTUDIO_DATABASE_URL=database_url,
        MUSICSTUDIO_SECRET_KEY="c" * 32,
        MUSICSTUDIO_LEASE_SECONDS=str(LEASE_SECONDS),
        MUSICSTUDIO_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        MUSICSTUDIO_LOG_FORMAT="json",
    )
    bodies = [_body(rng, n) for n in range(JOBS)]
    cluster = ChaosCluster(tmp_path, env, WORKERS, rng)
    issued = cluster.bootstrap()
    began = time.monotonic()
    try:
        base = cluster.start()
        started = time.monotonic()
        url = f"{base}/v1/music/{issued['organization_id']}"
        headers = {"X-API-Key": issued["api_key"]}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            accepted = _submit_under_chaos(cluster, http, bodies)
            chaos_ended = time.monotonic()
            drained = _drain(cluster)
            tails = cluster.tails()
    finally:
        exit_codes = cluster.stop()
    stopped = time.monotonic()

    logs = cluster.worker_logs()
    job_rows, track_rows = asyncio.run(_rows(database_url))
    history = History(
        accepted=accepted,
        logs=logs,
        kills=cluster.kills(logs),
        jobs=job_rows,
        tracks=track_rows,
        objects=_objects(data_dir / "media"),
    )
    verdict = check(history)
    (tmp_path / "kills.log").write_text("".join(f"{k.describe()}\n" for k in history.kills))
    print(
        f"chaos seed {seed}: {verdict.stats}, {cluster.idle_ticks} ticks with no worker up; "
        f"start {started - began:.1f}s, "
        f"chaos {chaos_ended - started:.1f}s, drain and stop {stopped - chaos_ended:.1f}s"
    )
    # A drain that timed out shows up above as jobs that are not terminal.
    assert not verdict.problems, _explain(seed, verdict, history)
    assert drained, f"seed {seed}: the API listed pending jobs the database does not{tails}"
    hits = verdict.stats["render_hits"] + verdict.stats["stems_hits"]
    assert hits >= MIN_HITS, _explain(seed, verdict, history)
    assert verdict.stats["render_hits"] >= MIN_RENDER_HITS, _explain(seed, verdict, history)
    assert all(code == 0 for code in exit_codes.values()), f"unclean exits: {exit_codes}"


def _body(rng: random.Random, n: int) -> dict[str, Any]:
    return job_body(
        prompt=f"{rng.choice(PROMPTS)} number {n}",
        duration_seconds=rng.choice((1, 2)),
        seed=n,
    )


def _submit_under_chaos(
    cluster: ChaosCluster, http: httpx.Client, bodies: list[dict[str, Any]]
) -> list[str]:
    """Submit every job from threads while killing workers, until no job is pending or
    ``CHAOS_SECONDS`` are up; the ids of the accepted jobs."""
    began = time.monotonic()

    def post(n: int, body: dict[str, Any]) -> str:
        # Paced, so that even on a fast machine the run lasts long enough for many kills.
        time.sleep(max(0.0, began + n * SUBMIT_SECONDS / len(bodies) - time.monotonic()))
        created = http.post("/generations", json=body)
        assert created.status_code == 202, created.text
        job: dict[str, Any] = created.json()
        assert job["status"] == "queued", job
        return str(job["id"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        posts = [pool.submit(post, n, body) for n, body in enumerate(bodies)]
        deadline = began + CHAOS_SECONDS
        while time.monotonic() < deadline:
            # The pause is the chaos schedule itself, not a wait for some state.
            time.sleep(cluster.rng.uniform(*KILL_EVERY))
            if all(p.done() for p in posts) and not cluster.jobs_pending():
                break
            cluster.kill_random_worker()
        return [p.result() for p in posts]


def _drain(cluster: ChaosCluster) -> bool:
    """Wait, without kills, until no job is pending; False if some still were at the deadline."""
    try:
        wait_for(lambda: not cluster.jobs_pending(), DRAIN_SECONDS, "the drain")
    except AssertionError:
        cluster.check_api()
        return False
    return True


async def _rows(database_url: str) -> tuple[dict[str, JobRow], list[TrackRow]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            jobs = (await conn.execute(select(generation_jobs))).mappings().all()
            made = (await conn.execute(select(tracks))).mappings().all()
    finally:
        await engine.dispose()
    job_rows = {row["id"]: JobRow(*(row[f.name] for f in fields(JobRow))) for row in jobs}
    track_rows = [
        TrackRow(row["id"], row["job_id"], row["storage_key"], row["midi_key"], _stems(row))
        for row in made
    ]
    return job_rows, track_rows


def _stems(track: Any) -> tuple[str, ...] | None:
    """The storage keys of a track's attached stems; None if it has none attached."""
    stems = track["stems"]
    return None if stems is None else tuple(stem["storage_key"] for stem in stems.values())


def _objects(media: Path) -> set[str]:
    """Every stored object's key; an interrupted upload's temp file is never served."""
    return {
        path.relative_to(media).as_posix()
        for path in media.rglob("*")
        if path.is_file() and not path.name.startswith(".upload-")
    }


def _explain(seed: int, verdict: Verdict, history: History) -> str:
    kills = "\n".join(kill.describe() for kill in history.kills)
    return (
        f"seed {seed} (rerun with MUSICSTUDIO_CHAOS_SEED={seed}); {verdict.stats}\n"
        f"{verdict.report()}\nkill log:\n{kills}"
    )
