"""Idle workers wake when a job is queued: at once on PostgreSQL (LISTEN/NOTIFY), within a
poll interval on SQLite."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from musicstudio.services import generations
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import NewGeneration
from musicstudio.store.accounts import Principal
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
