"""Benchmark the jobs-table queue on PostgreSQL: claim+finish throughput, pickup latency.

Two measurements, each on a fresh database of the local (or ``--admin-url``) server:

1. **Throughput**: ``--jobs`` queued jobs, then 1, 4 and 8 worker *processes* that each
   claim (``FOR UPDATE SKIP LOCKED``) and complete (the real ``complete_job``, inserting a
   track row) until the queue is empty, with no engine in between ("null engine"). Reported:
   jobs per second from the start signal to the last completion, and a check that every
   job succeeded exactly once (attempt 1, one track each).
2. **Pickup latency**: 2 idle worker processes; jobs are submitted through the service's
   create path at ``--rate`` per second; each job's ``started_at - created_at`` (the time a
   job waits for a worker) is collected, once with PostgreSQL NOTIFY (``wakeup.py``) and
   once with polling alone every ``--poll`` seconds (the default setting, 0.5 s).

    .venv/bin/python bench/jobs_queue.py              # 5000 jobs; 1, 4, 8 workers; latency
    .venv/bin/python bench/jobs_queue.py --jobs 1000 --latency-jobs 100 --workers 1 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from musicstudio.db.database import driver_dsn

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


# --------------------------------------------------------------------------- databases


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(driver_dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_database(admin_url: str) -> tuple[str, str]:
    """Create and migrate a database; returns (name, SQLAlchemy URL)."""
    from musicstudio.db.migrate import upgrade

    name = f"musicstudio_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = (
        make_url(admin_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )
    upgrade(url)
    return name, url


def drop_database(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _owner(url: str) -> tuple[str, str]:
    """One organization and user to own the jobs."""
    from musicstudio import ids
    from musicstudio.clock import utcnow
    from musicstudio.db.database import Database
    from musicstudio.db.tables import organizations, users

    db = Database(url)
    org_id, user_id = ids.new_id(ids.ORGANIZATION), ids.new_id(ids.USER)
    async with db.write() as conn:
        await conn.execute(
            insert(organizations).values(id=org_id, name="bench", created_at=utcnow())
        )
        await conn.execute(
            insert(users).values(
                id=user_id, org_id=org_id, email="bench@example.com", created_at=utcnow()
            )
        )
    await db.dispose()
    return org_id, user_id


async def _fill(url: str, org_id: str, user_id: str, count: int) -> None:
    from musicstudio.clock import utcnow
    from musicstudio.db.database import Database
    from musicstudio.db.tables import generation_jobs

    db = Database(url)
    now = utcnow()
    rows = [_job_values(org_id, user_id, now) for _ in range(count)]
    async with db.write() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(generation_jobs), rows[start : start + 1000])
    await db.dispose()


def _job_values(org_id: str, user_id: str, now: datetime) -> dict[str, Any]:
    """A queued null-engine job, available now."""
    from musicstudio import ids

    return {
        "id": ids.new_id(ids.JOB),
        "org_id": org_id,
        "user_id": user_id,
        "status": "queued",
        "progress": 0,
        "engine": "null",
        "mode": "creation",
        "created_at": now,
        "updated_at": now,
        "request": {"prompt": "x", "duration_seconds": 1},
        "available_at": now,
        "attempt": 0,
        "max_attempts": 3,
        "cancel_requested": False,
    }


def _track(lease: Any, now: datetime) -> dict[str, Any]:
    from musicstudio import ids

    track_id = ids.new_id(ids.TRACK)
    return {
        "id": track_id,
        "org_id": lease.org_id,
        "user_id": lease.user_id,
        "job_id": lease.job_id,
        "title": "null",
        "engine": lease.engine,
        "mode": lease.mode,
        "instrumental": True,
        "measured_duration_seconds": 1.0,
        "mime_type": "audio/mpeg",
        "storage_key": f"tracks/{lease.org_id}/{track_id}.mp3",
        "size_bytes": 1,
        "licence_class": "unclear",
        "licence_version": "bench",
        "commercial_use": False,
        "requires_attribution": True,
        "recipe": {},
        "created_at": now,
    }


# --------------------------------------------------------------------------- workers


async def _drain(url: str, owner: str, start_at: float) -> int:
    """Claim and complete until the queue is empty (the throughput worker)."""
    from musicstudio import queue
    from musicstudio.clock import utcnow
    from musicstudio.db.database import Database

    db = Database(url)
    done = 0
    await queue.claim_next_job(db, owner, utcnow() - timedelta(days=365), 30)  # opens the pool
    await asyncio.sleep(max(0.0, start_at - time.time()))
    while True:
        lease = await queue.claim_next_job(db, owner, utcnow(), 30)
        if lease is None:
            break
        await queue.complete_job(db, lease, utcnow(), _track(lease, utcnow()))
        done += 1
    await db.dispose()
    return done


async def _serve(url: str, owner: str, notify: bool, poll: float, stop_at: float) -> int:
    """An idle-waiting worker (the latency worker): NOTIFY or polling, like ``Worker``."""
    from musicstudio import queue
    from musicstudio.clock import utcnow
    from musicstudio.db.database import Database
    from musicstudio.wakeup import WorkSignal

    db = Database(url)
    signal = WorkSignal(url)
    if notify:
        signal.start()
    done = 0
    while time.time() < stop_at:
        lease = await queue.claim_next_job(db, owner, utcnow(), 30)
        if lease is None:
            await signal.wait(min(poll, max(0.0, stop_at - time.time())))
            continue
        await queue.complete_job(db, lease, utcnow(), _track(lease, utcnow()))
        done += 1
    await signal.stop()
    await db.dispose()
    return done


def _drain_process(url: str, owner: str, start_at: float, out: Any) -> None:
    out.put(asyncio.run(_drain(url, owner, start_at)))


def _serve_process(url: str, owner: str, notify: bool, poll: float, stop_at: float) -> None:
    asyncio.run(_serve(url, owner, notify, poll, stop_at))


# --------------------------------------------------------------------------- cases


async def _counts(url: str) -> dict[str, Any]:
    from musicstudio.db.database import Database
    from musicstudio.db.tables import generation_jobs as jobs
    from musicstudio.db.tables import tracks

    db = Database(url)
    async with db.read() as conn:
        by_status = dict(
            (await conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))).all()
        )
        attempts = (await conn.execute(select(func.max(jobs.c.attempt)))).scalar_one()
        track_rows = (await conn.execute(select(func.count()).select_from(tracks))).scalar_one()
        per_job = (
            await conn.execute(
                select(func.count()).select_from(
                    select(tracks.c.job_id).group_by(tracks.c.job_id).subquery()
                )
            )
        ).scalar_one()
    await db.dispose()
    return {
        "by_status": by_status,
        "max_attempt": attempts,
        "tracks": track_rows,
        "jobs_with_tracks": per_job,
    }


def throughput(admin_url: str, jobs: int, workers: int) -> dict[str, Any]:
    name, url = fresh_database(admin_url)
    try:
        org_id, user_id = asyncio.run(_owner(url))
        asyncio.run(_fill(url, org_id, user_id, jobs))
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 3.0  # every process connected and waiting by then
        procs = [
            ctx.Process(target=_drain_process, args=(url, f"w{i}", start_at, out))
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        done = [out.get(timeout=600) for _ in procs]
        finished = time.time()
        for proc in procs:
            proc.join()
        counts = asyncio.run(_counts(url))
    finally:
        drop_database(admin_url, name)
    seconds = finished - start_at
    ok = (
        counts["by_status"] == {"succeeded": jobs}
        and counts["max_attempt"] == 1
        and counts["tracks"] == jobs == counts["jobs_with_tracks"]
    )
    return {
        "workers": workers,
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_s": jobs / seconds,
        "per_worker": done,
        "exactly_once": ok,
        "counts": counts,
    }


def latency(admin_url: str, count: int, rate: float, notify: bool, poll: float) -> dict[str, Any]:
    name, url = fresh_database(admin_url)
    try:
        org_id, user_id = asyncio.run(_owner(url))
        ctx = mp.get_context("spawn")
        stop_at = time.time() + 4.0 + count / rate + 3.0
        procs = [
            ctx.Process(target=_serve_process, args=(url, f"w{i}", notify, poll, stop_at))
            for i in range(2)
        ]
        for proc in procs:
            proc.start()
        time.sleep(4.0)  # both idle (and listening, with NOTIFY)
        asyncio.run(_submit_jobs(url, org_id, user_id, count, rate))
        for proc in procs:
            proc.join()
        waits = asyncio.run(_waits(url))
    finally:
        drop_database(admin_url, name)
    waits_ms = sorted(w * 1000 for w in waits)
    return {
        "mode": "notify" if notify else f"polling every {poll:g} s",
        "jobs": count,
        "picked_up": len(waits_ms),
        "p50_ms": statistics.median(waits_ms) if waits_ms else None,
        "p99_ms": waits_ms[min(len(waits_ms) - 1, int(0.99 * len(waits_ms)))] if waits_ms else None,
        "max_ms": waits_ms[-1] if waits_ms else None,
    }


async def _submit_jobs(url: str, org_id: str, user_id: str, count: int, rate: float) -> None:
    """Create jobs through the service (insert + NOTIFY in one transaction) at ``rate``/s."""
    from musicstudio.clock import utcnow
    from musicstudio.db.database import Database
    from musicstudio.db.tables import generation_jobs
    from musicstudio.wakeup import announce_work

    db = Database(url)
    started = time.monotonic()
    for n in range(count):
        target = started + n / rate
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        now = utcnow()
        async with db.write() as conn:
            await conn.execute(insert(generation_jobs).values(**_job_values(org_id, user_id, now)))
            await announce_work(conn)
    await db.dispose()


async def _waits(url: str) -> list[float]:
    from musicstudio.db.database import Database
    from musicstudio.db.tables import generation_jobs as jobs

    db = Database(url)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(jobs.c.created_at, jobs.c.started_at).where(jobs.c.started_at.is_not(None))
            )
        ).all()
    await db.dispose()
    return [(started - created).total_seconds() for created, started in rows]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--admin-url", default=os.environ.get("MUSICSTUDIO_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second")
    parser.add_argument("--poll", type=float, default=0.5, help="polling interval (s)")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"when": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")}
    results["throughput"] = []
    for workers in args.workers:
        row = throughput(args.admin_url, args.jobs, workers)
        results["throughput"].append(row)
        print(
            f"{workers} workers: {row['jobs_per_s']:,.0f} jobs/s "
            f"({row['jobs']} in {row['seconds']:.2f} s), exactly once: {row['exactly_once']}",
            file=sys.stderr,
        )
    results["latency"] = []
    for notify in (True, False):
        row = latency(args.admin_url, args.latency_jobs, args.rate, notify, args.poll)
        results["latency"].append(row)
        print(
            f"{row['mode']}: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
            f"max {row['max_ms']:.1f} ms ({row['picked_up']}/{row['jobs']} picked up)",
            file=sys.stderr,
        )

    print("| workers | jobs | seconds | jobs/s | exactly once |")
    print("|---:|---:|---:|---:|---|")
    for row in results["throughput"]:
        print(
            f"| {row['workers']} | {row['jobs']} | {row['seconds']:.2f} | "
            f"{row['jobs_per_s']:,.0f} | {row['exactly_once']} |"
        )
    print()
    print("| wake-up | jobs | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for row in results["latency"]:
        print(
            f"| {row['mode']} | {row['picked_up']}/{row['jobs']} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['max_ms']:.1f} |"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"queue-{results['when']}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {out.relative_to(BENCH_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
