"""Real worker processes: a worker killed mid-job leaves a job another worker finishes once."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import create_engine, select

from musicstudio.config import load_settings
from musicstudio.db.tables import generation_jobs, tracks
from musicstudio.services import generations
from musicstudio.services.context import build_context
from musicstudio.services.generations import NewGeneration
from musicstudio.store.accounts import Principal
from tests.processes import cli_env, run_cli, start_cli, stop, wait_for

pytestmark = pytest.mark.e2e


def _job_row(db_path: Path, job_id: str) -> dict[str, object]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            row = conn.execute(select(generation_jobs).where(generation_jobs.c.id == job_id)).one()
            return dict(row._mapping)
    finally:
        engine.dispose()


def test_killed_worker_job_is_finished_by_another_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    env = cli_env(data, MUSICSTUDIO_LEASE_SECONDS="2", MUSICSTUDIO_SECRET_KEY="s" * 32)
    run_cli(["migrate"], env)
    issued = json.loads(run_cli(["admin", "bootstrap", "--json"], env))

    # Submit through the service layer against the same database file.
    for key, value in env.items():
        if key.startswith("MUSICSTUDIO_"):
            monkeypatch.setenv(key, value)
    settings = load_settings()

    async def submit() -> str:
        ctx = build_context(settings)
        try:
            principal = Principal(issued["organization_id"], issued["user_id"], "k")
            req = NewGeneration(engine="studio", prompt="slow ambient pads", duration_seconds=240)
            result = await generations.create_job(ctx, principal, req, None, "http://t")
            return str(result["id"])
        finally:
            await ctx.close()

    job_id = asyncio.run(submit())
    db_path = data / "musicstudio.db"
    first = start_cli(["worker"], env, tmp_path / "w1.log")
    try:
        wait_for(
            lambda: int(_job_row(db_path, job_id)["progress"]) > 0, 60, "first worker progress"
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = _job_row(db_path, job_id)
        assert killed_at["status"] == "running" and killed_at["attempt"] == 1

        second = start_cli(["worker"], env, tmp_path / "w2.log")
        try:
            done = wait_for(
                lambda: (
                    (row := _job_row(db_path, job_id))["status"] in ("succeeded", "failed") and row
                ),
                120,
                "the job to finish on the second worker",
            )
        finally:
            stop(second)
    finally:
        stop(first)

    assert done["status"] == "succeeded", (tmp_path / "w2.log").read_text()[-2000:]
    assert done["attempt"] == 2
    assert int(done["progress"]) == 100
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        rows = conn.execute(select(tracks).where(tracks.c.job_id == job_id)).all()
    engine.dispose()
    assert len(rows) == 1, "completed exactly once"
    audio = data / "media" / rows[0].storage_key
    assert abs(sf.info(str(audio)).duration - 240) <= 0.05
