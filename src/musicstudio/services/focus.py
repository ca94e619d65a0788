"""Focus sessions: a goal becomes a stream of ~2-minute segments rendered in the background.

Every segment is an ordinary job (mode ``focus``) in the one queue, carrying its place in the
session (``request.focus``: the session's seed, the index, intensity and divergence), so any
worker renders it and every segment of a session shares its tempo and key
(``engines.studio.focus``). All segments are queued when the session starts, in playback
order: rendering runs at ~60x real time, so a one-hour session costs about a worker-minute,
and ending the session cancels whatever has not been rendered. A per-user daily budget of
minutes (``MUSICSTUDIO_FOCUS_MINUTES_PER_DAY``) caps what a session may queue; a session that
hits it is ``stopped_cap`` and plays what it got.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from musicstudio import ids
from musicstudio.clock import utcnow
from musicstudio.errors import NotFound, ValidationFailed
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import playback_ttl
from musicstudio.services.quota import admit_jobs
from musicstudio.services.views import whole_seconds
from musicstudio.store import focus as store
from musicstudio.store.accounts import Principal
from musicstudio.store.jobs import QUEUED, SUCCEEDED, insert_job
from musicstudio.wakeup import announce_work

SEGMENT_SECONDS = 120
TARGET_LUFS = -14.0  # every segment is mastered to this loudness
CROSSFADE_MS = 4000  # the fade hint: consecutive segments overlap by this much
# A rough wait for the next segment while one is pending (a 2-minute segment renders in a
# few seconds on one core); clients poll again at ``next_ready_at``.
SEGMENT_ESTIMATE_SECONDS = 5

# What each goal asks of the composer (``custom_prompt`` brings its own words).
GOAL_PROMPTS = {
    "focus": "steady unobtrusive lo-fi for deep focus, soft piano and mellow drums",
    "relax": "calm relaxing ambient with warm pads and gentle piano",
    "sleep": "slow quiet ambient drone for sleep, soft pads, no drums",
    "energize": "upbeat bright electronic groove to energize, driving synth bass",
}
# Goals also set how busy the music is unless the caller chose an intensity.
GOAL_INTENSITY = {"focus": "medium", "relax": "low", "sleep": "low", "energize": "high"}


@dataclass(frozen=True)
class NewFocusSession:
    goal: str
    target_minutes: int
    custom_prompt: str | None = None
    intensity: str | None = None
    divergence: float = 0.0
    engine: str | None = None


async def start_session(
    ctx: ServiceContext, principal: Principal, new: NewFocusSession, base_url: str
) -> dict[str, Any]:
    """Create the session and queue its segments (as many as today's budget allows)."""
    engine = _focus_engine(ctx, new.engine)
    prompt = _goal_prompt(ctx, new)
    intensity = new.intensity or GOAL_INTENSITY.get(new.goal, "medium")
    now = utcnow()
    total = max(1, math.ceil(new.target_minutes * 60 / SEGMENT_SECONDS))
    session_id = ids.new_id(ids.FOCUS_SESSION)
    session: dict[str, Any] = {
        "id": session_id,
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "status": store.ACTIVE,
        "goal": new.goal,
        "custom_prompt": new.custom_prompt,
        "intensity": intensity,
        "divergence": new.divergence,
        "engine": engine,
        "target_minutes": new.target_minutes,
        "total_segments": total,
        "segment_seconds": SEGMENT_SECONDS,
        "seed": secrets.randbelow(2**31),
        "target_lufs": TARGET_LUFS,
        "created_at": now,
        "updated_at": now,
        "ended_at": None,
    }
    async with ctx.db.write() as conn:
        day = datetime(now.year, now.month, now.day, tzinfo=UTC)
        spent = await store.minutes_generated_since(conn, principal.org_id, principal.user_id, day)
        budget = ctx.settings.focus_minutes_per_day - spent
        queued = min(total, max(0, math.floor(budget * 60 / SEGMENT_SECONDS)))
        if queued < total:
            session.update(status=store.STOPPED_CAP, ended_at=now)
        if queued:
            await admit_jobs(conn, ctx.settings, principal.org_id, queued)
        await store.insert_session(conn, session)
        for index in range(queued):
            await insert_job(conn, _segment_job(ctx, session, prompt, index, now))
        if queued:
            await announce_work(conn)
    return await get_session(ctx, principal, session_id, base_url)


async def get_session(
    ctx: ServiceContext, principal: Principal, session_id: str, base_url: str
) -> dict[str, Any]:
    """The session with its ready segments, each with a freshly signed URL."""
    async with ctx.db.read() as conn:
        session = await store.get_session(conn, principal.org_id, principal.user_id, session_id)
        if session is None:
            raise NotFound("Focus session not found.")
        segments = await store.segment_states(conn, session_id)
    now = utcnow()
    ready = []
    for segment in segments:
        if segment["status"] != SUCCEEDED or segment["track_id"] is None:
            continue
        duration = float(segment["measured_duration_seconds"])
        expires_at = int(now.timestamp()) + playback_ttl(ctx, duration)
        index = int(segment["segment_index"])
        ready.append(
            {
                "segment_index": index,
                "playback_url": ctx.storage.playback_url(
                    segment["storage_key"], expires_at, base_url
                ),
                "measured_duration_seconds": duration,
                "target_lufs": session["target_lufs"],
                "fade_in_ms": 0 if index == 0 else CROSSFADE_MS,
                "fade_out_ms": 0 if index == session["total_segments"] - 1 else CROSSFADE_MS,
            }
        )
    pending = any(segment["status"] in store.PENDING for segment in segments)
    next_ready = now + timedelta(seconds=SEGMENT_ESTIMATE_SECONDS) if pending else None
    return {
        "session_id": session["id"],
        "status": session["status"],
        "goal": session["goal"],
        "engine": session["engine"],
        "target_minutes": session["target_minutes"],
        "total_segments": session["total_segments"],
        "ready_count": len(ready),
        "segments": ready,
        "more_pending": pending,
        "next_ready_at": whole_seconds(next_ready) if next_ready else None,
        "created_at": whole_seconds(session["created_at"]),
    }


async def end_session(
    ctx: ServiceContext, principal: Principal, session_id: str, base_url: str
) -> dict[str, Any]:
    """No new segments; ready ones stay playable. Ending an ended session changes nothing."""
    async with ctx.db.write() as conn:
        session = await store.get_session(
            conn, principal.org_id, principal.user_id, session_id, lock=True
        )
        if session is None:
            raise NotFound("Focus session not found.")
        await store.stop_session(conn, session_id, store.ENDED, utcnow())
    return await get_session(ctx, principal, session_id, base_url)


def _focus_engine(ctx: ServiceContext, requested: str | None) -> str:
    key = requested or "studio"
    engine = ctx.engines.get(key)
    if engine is None:
        raise ValidationFailed.field("engine", f"unknown engine {key!r}")
    if "focus" not in engine.capabilities().modes:
        raise ValidationFailed.field("engine", f"engine {key!r} does not make focus music")
    return key


def _goal_prompt(ctx: ServiceContext, new: NewFocusSession) -> str:
    if new.goal != "custom_prompt":
        return GOAL_PROMPTS[new.goal]
    if not new.custom_prompt or not new.custom_prompt.strip():
        raise ValidationFailed.field("custom_prompt", "required when goal is custom_prompt")
    decision = ctx.policy.check(prompt=new.custom_prompt, style_tags=(), title=None, lyrics=None)
    if decision:
        raise ValidationFailed.field("custom_prompt", decision.reason)
    return new.custom_prompt.strip()


def _segment_job(
    ctx: ServiceContext, session: dict[str, Any], prompt: str, index: int, now: datetime
) -> dict[str, Any]:
    focus = {
        "session_seed": session["seed"],
        "index": index,
        "intensity": session["intensity"],
        "divergence": session["divergence"],
    }
    request = {
        "prompt": prompt,
        "duration_seconds": session["segment_seconds"],
        "style_tags": [],
        "title": None,
        "seed": None,
        "output_format": "mp3",
        "focus": focus,
    }
    # Created a microsecond apart, so the queue (oldest first) renders them in order.
    created = now + timedelta(microseconds=index)
    return {
        "id": ids.new_id(ids.JOB),
        "org_id": session["org_id"],
        "user_id": session["user_id"],
        "status": QUEUED,
        "progress": 0,
        "engine": session["engine"],
        "mode": "focus",
        "created_at": created,
        "updated_at": created,
        "request": request,
        "available_at": created,
        "attempt": 0,
        "max_attempts": ctx.settings.max_attempts,
        "cancel_requested": False,
        "focus_session_id": session["id"],
        "segment_index": index,
    }
