"""A completion whose answer is lost: the job never ends up succeeded without its audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from musicstudio import queue
from musicstudio.db.database import DatabaseUnavailable
from musicstudio.db.tables import tracks
from musicstudio.services.context import ServiceContext
from musicstudio.worker import publish
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import job_row
from tests.worker.test_runner import _submit

pytestmark = pytest.mark.timeout(120)


def _media_files(ctx: ServiceContext) -> list[Path]:
    root = ctx.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "SETTLE_RETRY_SECONDS", 0.05)


async def test_a_completion_that_committed_but_went_unanswered_keeps_its_audio(
    ctx: ServiceContext, alice: Caller, monkeypatch: pytest.MonkeyPatch, quick_settle: None
) -> None:
    real = queue.complete_job

    async def commit_then_drop(*args: Any, **kwargs: Any) -> queue.Outcome:
        monkeypatch.setattr(publish.queue, "complete_job", real)
        await real(*args, **kwargs)
        raise DatabaseUnavailable("connection lost after commit")

    monkeypatch.setattr(publish.queue, "complete_job", commit_then_drop)
    job_id = await _submit(ctx, alice)
    assert await Worker(ctx).run_once()
    row = await job_row(ctx, job_id)
    assert row["status"] == "succeeded" and row["attempt"] == 1
    async with ctx.db.read() as conn:
        track = (await conn.execute(select(tracks).where(tracks.c.job_id == job_id))).one()
    assert ctx.storage.path_for(track.storage_key).stat().st_size == track.size_bytes


async def test_a_completion_that_never_committed_is_retried_under_the_same_lease(
    ctx: ServiceContext, alice: Caller, monkeypatch: pytest.MonkeyPatch, quick_settle: None
) -> None:
    real = queue.complete_job
    calls = []

    async def drop_first(*args: Any, **kwargs: Any) -> queue.Outcome:
        calls.append(args)
        if len(calls) == 1:
            raise DatabaseUnavailable("connection refused")
        return await real(*args, **kwargs)

    monkeypatch.setattr(publish.queue, "complete_job", drop_first)
    job_id = await _submit(ctx, alice)
    assert await Worker(ctx).run_once()
    row = await job_row(ctx, job_id)
    assert len(calls) == 2 and row["status"] == "succeeded" and row["attempt"] == 1
    async with ctx.db.read() as conn:
        track = (await conn.execute(select(tracks).where(tracks.c.job_id == job_id))).one()
    assert ctx.storage.path_for(track.storage_key).exists()


async def test_an_unsettled_completion_keeps_the_objects_and_leaves_the_lease_to_expire(
    ctx: ServiceContext, alice: Caller, monkeypatch: pytest.MonkeyPatch, quick_settle: None
) -> None:
    async def unreachable(*args: Any, **kwargs: Any) -> queue.Outcome:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(publish.queue, "complete_job", unreachable)
    short = replace(ctx, settings=replace(ctx.settings, lease_seconds=1))
    job_id = await _submit(short, alice)
    assert await Worker(short).run_once()
    row = await job_row(ctx, job_id)
    # Not failed, not succeeded: still leased, so the rescuer re-queues it once it expires.
    assert row["status"] == "running" and row["result_track_id"] is None
    assert _media_files(ctx), "objects of an attempt that may have committed are never deleted"
