"""Focus sessions: start (segments queued in order), poll (ready segments with fresh URLs
that crossfade without a level jump), end (idempotent), the daily cap, and goals, intensity
and divergence that change the music."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from musicstudio.db.tables import generation_jobs, tracks
from musicstudio.engines.base import FocusSegment, RenderRequest
from musicstudio.services.context import ServiceContext
from musicstudio.services.focus import GOAL_INTENSITY, GOAL_PROMPTS
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import api_client, assert_error, error_fields, local_path, without_request_ids

SESSION_FIELDS = {
    "session_id",
    "status",
    "goal",
    "engine",
    "target_minutes",
    "total_segments",
    "ready_count",
    "segments",
    "more_pending",
    "next_ready_at",
    "created_at",
}


async def _start(client: httpx.AsyncClient, caller: Caller, **body: Any) -> httpx.Response:
    payload = {"goal": "focus", "target_minutes": 3, **body}
    return await client.post(caller.path("/focus/sessions"), json=payload, headers=caller.headers)


def _rms_db(block: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(block, dtype=np.float64))) + 1e-12))


async def test_a_session_renders_its_segments_in_order_and_they_crossfade_evenly(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    started = await _start(client, alice, target_minutes=3)
    assert started.status_code == 202, started.text
    session = started.json()
    assert set(session) == SESSION_FIELDS
    assert session["session_id"].startswith("mfocus_") and session["status"] == "active"
    assert (session["total_segments"], session["ready_count"], session["segments"]) == (2, 0, [])
    assert session["more_pending"] and session["next_ready_at"]

    worker = Worker(ctx)
    claimed = []
    for _ in range(2):
        assert await worker.run_once()
        async with ctx.db.read() as conn:
            rows = await conn.execute(
                select(generation_jobs.c.segment_index).where(
                    generation_jobs.c.status == "succeeded"
                )
            )
            claimed.append(sorted(rows.scalars().all()))
    assert claimed == [[0], [0, 1]], "segments render in playback order"

    url = alice.path(f"/focus/sessions/{session['session_id']}")
    polled = (await client.get(url, headers=alice.headers)).json()
    assert (polled["ready_count"], polled["more_pending"], polled["next_ready_at"]) == (
        2,
        False,
        None,
    )
    first, second = polled["segments"]
    assert (first["segment_index"], second["segment_index"]) == (0, 1)
    assert (first["fade_in_ms"], first["fade_out_ms"]) == (0, 4000)
    assert (second["fade_in_ms"], second["fade_out_ms"]) == (4000, 0)
    audio = []
    for segment in (first, second):
        assert segment["target_lufs"] == -14.0
        assert abs(segment["measured_duration_seconds"] - 120) <= 0.1
        response = await client.get(local_path(segment["playback_url"]))
        assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
        samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
        assert abs(len(samples) / rate - 120) <= 0.2
        audio.append(samples)
    tail, head = _rms_db(audio[0][-44100:]), _rms_db(audio[1][:44100])
    assert abs(tail - head) <= 3.0, (tail, head)

    async with ctx.db.read() as conn:
        recipes = (await conn.execute(select(tracks.c.recipe, tracks.c.mode))).all()
    assert {r.mode for r in recipes} == {"focus"}
    assert len({(r.recipe["tempo_bpm"], r.recipe["key"]) for r in recipes}) == 1


async def test_end_is_graceful_and_idempotent(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    session = (await _start(client, alice, target_minutes=6)).json()
    assert await Worker(ctx).run_once()  # segment 0 is ready
    end_url = alice.path(f"/focus/sessions/{session['session_id']}/end")
    ended = await client.post(end_url, headers=alice.headers)
    assert ended.status_code == 200
    body = ended.json()
    assert body["status"] == "ended" and not body["more_pending"]
    assert [s["segment_index"] for s in body["segments"]] == [0], "ready ones stay"
    again = (await client.post(end_url, headers=alice.headers)).json()
    assert {k: v for k, v in again.items() if k != "segments"} == {
        k: v for k, v in body.items() if k != "segments"
    }
    assert not await Worker(ctx).run_once(), "no new segments after the end"
    async with ctx.db.read() as conn:
        statuses = (await conn.execute(select(generation_jobs.c.status))).scalars().all()
    assert sorted(statuses) == ["cancelled", "cancelled", "succeeded"]


@pytest.fixture
async def capped(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a daily focus budget of 5 minutes per user."""
    small = replace(ctx, settings=replace(ctx.settings, focus_minutes_per_day=5))
    async with api_client(small) as http:
        yield http


async def test_the_daily_budget_stops_a_session_as_stopped_cap(
    capped: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller
) -> None:
    first = (await _start(capped, alice, target_minutes=10)).json()
    assert first["status"] == "stopped_cap" and first["total_segments"] == 5
    assert first["more_pending"], "the two segments within budget still render"
    second = (await _start(capped, alice, target_minutes=2)).json()
    assert second["status"] == "stopped_cap" and not second["more_pending"]
    other_user = (await _start(capped, bob, target_minutes=2)).json()
    assert other_user["status"] == "active", "the budget is per user"
    async with ctx.db.read() as conn:
        queued = (
            (
                await conn.execute(
                    select(generation_jobs.c.user_id).where(generation_jobs.c.status == "queued")
                )
            )
            .scalars()
            .all()
        )
    assert sorted(queued) == sorted([alice.user_id] * 2 + [bob.user_id])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"goal": "custom_prompt"}, "custom_prompt"),
        ({"goal": "study"}, "goal"),
        ({"target_minutes": 0}, "target_minutes"),
        ({"target_minutes": 481}, "target_minutes"),
        ({"target_minutes": "5"}, "target_minutes"),
        ({"divergence": 1.5}, "divergence"),
        ({"intensity": "max"}, "intensity"),
        ({"engine": "nope"}, "engine"),
    ],
)
async def test_bad_starts_are_422(
    client: httpx.AsyncClient, alice: Caller, body: dict[str, Any], field: str
) -> None:
    response = await _start(client, alice, **body)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == [field]


async def test_other_users_and_organizations_see_a_missing_session(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller
) -> None:
    session_id = (await _start(client, alice)).json()["session_id"]
    for suffix, method in (("", "GET"), ("/end", "POST")):
        for caller in (bob, carol):
            theirs = await client.request(
                method,
                caller.path(f"/focus/sessions/{session_id}{suffix}"),
                headers=caller.headers,
            )
            missing = await client.request(
                method, caller.path(f"/focus/sessions/mfocus_x{suffix}"), headers=caller.headers
            )
            assert_error(theirs, 404, "RESOURCE_NOT_FOUND")
            assert (theirs.status_code, without_request_ids(theirs)) == (
                missing.status_code,
                without_request_ids(missing),
            )
        victim_path = await client.request(
            method, alice.path(f"/focus/sessions/{session_id}{suffix}"), headers=carol.headers
        )
        assert_error(victim_path, 403, "ORGANIZATION_ACCESS_DENIED")
    still = await client.get(alice.path(f"/focus/sessions/{session_id}"), headers=alice.headers)
    assert still.json()["status"] == "active", "nothing was ended"


def _segment_plan(ctx: ServiceContext, prompt: str, **focus: Any) -> Any:
    segment = FocusSegment(**{"session_seed": 5, "index": 0, **focus})
    request = RenderRequest(
        job_id="j",
        prompt=prompt,
        duration_seconds=120,
        work_dir=ctx.settings.data_dir,
        mode="focus",
        focus=segment,
    )
    engine = ctx.engines.get("studio")
    assert engine is not None
    return engine.plan(request)  # type: ignore[attr-defined]


def test_goals_intensity_and_divergence_change_the_music(ctx: ServiceContext) -> None:
    plans = {
        goal: _segment_plan(ctx, prompt, intensity=GOAL_INTENSITY[goal])
        for goal, prompt in GOAL_PROMPTS.items()
    }
    looks = {goal: (p.genre.key, p.tempo_bpm, len(p.parts)) for goal, p in plans.items()}
    assert len(set(looks.values())) == len(looks), looks
    assert plans["energize"].tempo_bpm > plans["sleep"].tempo_bpm
    roles = {goal: {part.role for part in p.parts} for goal, p in plans.items()}
    assert "drums" not in roles["sleep"] and "drums" in roles["energize"], roles

    prompt = GOAL_PROMPTS["focus"]
    low = _segment_plan(ctx, prompt, intensity="low")
    high = _segment_plan(ctx, prompt, intensity="high")
    assert low.energy < high.energy and low.density < high.density

    def changed_segments(divergence: float) -> int:
        base = _segment_plan(ctx, prompt, divergence=divergence).as_dict()
        return sum(
            _segment_plan(ctx, prompt, index=i, divergence=divergence).as_dict()["progression"]
            != base["progression"]
            for i in range(1, 9)
        )

    assert changed_segments(0.0) < changed_segments(1.0)
