"""Idle workers wake when a job is queued: at once on PostgreSQL (LISTEN/NOTIFY), within a
poll interval on SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import text

from musicstudio.services import generations
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import NewGeneration
from musicstudio.store.accounts import Principal
from musicstudio.wakeup import WorkSignal, announce_work
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import job_row


async def test_an_idle_worker_picks_up_new_work_promptly(
    ctx: ServiceContext, alice: Caller
) -> None:
    notify = not ctx.db.is_sqlite
    # On PostgreSQL the worker polls only every 60 s: a prompt pickup can only be NOTIFY.
    poll = 60.0 if notify else 0.2
    ctx = replace(ctx, settings=replace(ctx.settings, poll_seconds=poll))
    worker = Worker(ctx)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        if notify:
            await asyncio.wait_for(worker.signal.listening.wait(), timeout=10)
        await asyncio.sleep(0.5)  # idle, waiting
        me = Principal(org_id=alice.org_id, user_id=alice.user_id, key_id="k")
        request = NewGeneration(engine="studio", prompt="calm piano", duration_seconds=1)
        job = await generations.create_job(ctx, me, request, None, "http://t")
        submitted = time.monotonic()
        while (await job_row(ctx, job["id"]))["status"] == "queued":
            assert time.monotonic() - submitted < 5, "the idle worker did not wake up"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert not worker.signal.listening.is_set(), "the listening connection is closed"


async def test_the_listener_reconnects_after_losing_its_connection(ctx: ServiceContext) -> None:
    signal = WorkSignal(ctx.settings.database_url)
    if ctx.db.is_sqlite:
        assert not signal.enabled  # SQLite has no NOTIFY: workers poll
        return
    signal.start()
    try:
        await asyncio.wait_for(signal.listening.wait(), timeout=10)
        async with ctx.db.write() as conn:  # what a database restart does to it
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
        await wait_until(lambda: not signal.listening.is_set())
        await asyncio.wait_for(signal.listening.wait(), timeout=10)
        signal.event.clear()
        async with ctx.db.write() as conn:
            await announce_work(conn)
        await asyncio.wait_for(signal.event.wait(), timeout=5)
    finally:
        await signal.stop()


async def wait_until(check: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
