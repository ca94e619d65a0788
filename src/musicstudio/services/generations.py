"""Generation jobs: create (validated, policed, idempotent), read, list, cancel."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import RowMapping
from sqlalchemy.exc import IntegrityError

from musicstudio import ids
from musicstudio.clock import utcnow
from musicstudio.errors import IdempotencyKeyReused, NotFound, ValidationFailed
from musicstudio.services.context import ServiceContext
from musicstudio.services.quota import admit_jobs
from musicstudio.services.views import job_view, track_summary
from musicstudio.store import jobs as store
from musicstudio.store.accounts import Principal
from musicstudio.store.tracks import get_readable_track
from musicstudio.wakeup import announce_work

PLAYBACK_MARGIN_SECONDS = 300
INLINE_SCAN_ROWS = 1_000  # ≈ 0.1 ms of index walk on SQLite (docs/benchmarks.md)


@dataclass(frozen=True)
class NewGeneration:
    """A validated create request (types and sizes checked by the API layer)."""

    engine: str
    prompt: str
    duration_seconds: int
    mode: str = "creation"
    instrumental: bool = False
    lyrics: str | None = None
    seed_track_id: str | None = None
    style_tags: tuple[str, ...] = field(default_factory=tuple)
    title: str | None = None
    seed: int | None = None
    output_format: str | None = None

    def fingerprint(self) -> str:
        """What makes two requests "the same" for idempotency (the key itself excluded)."""
        body = asdict(self)
        body["style_tags"] = list(self.style_tags)
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _validate_against_engine(ctx: ServiceContext, req: NewGeneration) -> None:
    engine = ctx.engines.get(req.engine)
    caps = engine.capabilities() if engine is not None else None
    if caps is None or not caps.enabled:
        known = ", ".join(ctx.engines.keys()) or "none"
        raise ValidationFailed.field(
            "engine", f"unknown engine {req.engine!r} (available: {known})"
        )
    errors: list[dict[str, str]] = []
    if req.duration_seconds > caps.max_duration_seconds:
        errors.append(
            {
                "field": "duration_seconds",
                "message": f"must be at most {caps.max_duration_seconds} for this engine",
            }
        )
    if req.output_format is not None and req.output_format not in caps.output_formats:
        formats = ", ".join(caps.output_formats)
        errors.append({"field": "output_format", "message": f"must be one of: {formats}"})
    if req.mode not in caps.modes:
        errors.append(
            {"field": "mode", "message": f"engine {caps.engine_key!r} does not offer {req.mode!r}"}
        )
    if req.lyrics is not None and (req.instrumental or not caps.supports_lyrics):
        why = (
            "lyrics cannot be combined with instrumental: true"
            if caps.supports_lyrics
            else f"engine {caps.engine_key!r} cannot sing, so it does not accept lyrics"
        )
        errors.append({"field": "lyrics", "message": why})
    if errors:
        raise ValidationFailed(
            "The request does not fit the engine: "
            + "; ".join(f"{e['field']} {e['message']}" for e in errors),
            details={"errors": errors},
        )


async def _replay(
    ctx: ServiceContext, principal: Principal, existing: RowMapping, fingerprint: str, base_url: str
) -> dict[str, Any]:
    if existing["request_fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body.",
            details={
                "errors": [{"field": "idempotency_key", "message": "reused with a different body"}]
            },
        )
    return await get_job(ctx, principal, existing["id"], base_url)


async def create_job(
    ctx: ServiceContext,
    principal: Principal,
    req: NewGeneration,
    idempotency_key: str | None,
    base_url: str,
) -> dict[str, Any]:
    """Create a job (queued, or refused by the content policy); replays an idempotent repeat."""
    _validate_against_engine(ctx, req)
    if req.seed_track_id is not None:
        async with ctx.db.read() as conn:
            seed = await get_readable_track(
                conn, principal.org_id, principal.user_id, req.seed_track_id
            )
        if seed is None:
            raise ValidationFailed.field("seed_track_id", "no readable track with this id")

    fingerprint = req.fingerprint()
    if idempotency_key is not None:
        async with ctx.db.read() as conn:
            existing = await store.find_by_idempotency_key(
                conn, principal.org_id, principal.user_id, idempotency_key
            )
        if existing is not None:
            return await _replay(ctx, principal, existing, fingerprint, base_url)

    decision = ctx.policy.check(
        prompt=req.prompt, style_tags=req.style_tags, title=req.title, lyrics=req.lyrics
    )
    now = utcnow()
    job_id = ids.new_id(ids.JOB)
    request = {k: v for k, v in asdict(req).items() if k not in ("engine", "mode")}
    request["style_tags"] = list(req.style_tags)
    values: dict[str, Any] = {
        "id": job_id,
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "status": store.REFUSED if decision else store.QUEUED,
        "progress": 0,
        "engine": req.engine,
        "mode": req.mode,
        "created_at": now,
        "updated_at": now,
        "result_track_id": None,
        "error_message": None,
        "refusal_reason": decision.reason if decision else None,
        "request": request,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "available_at": now,
        "attempt": 0,
        "max_attempts": ctx.settings.max_attempts,
        "cancel_requested": False,
        "finished_at": now if decision else None,
    }
    try:
        async with ctx.db.write() as conn:
            if not decision:  # a refused job is never queued: no place to count
                await admit_jobs(conn, ctx.settings, principal.org_id, 1)
            await store.insert_job(conn, values)
            if not decision:
                await announce_work(conn)  # wakes an idle worker when this commits
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A concurrent request with the same key won the insert: answer with its job.
        async with ctx.db.read() as conn:
            existing = await store.find_by_idempotency_key(
                conn, principal.org_id, principal.user_id, idempotency_key
            )
        if existing is None:
            raise
        return await _replay(ctx, principal, existing, fingerprint, base_url)
    return {**job_view(values), "recipe": None}


def playback_ttl(ctx: ServiceContext, duration_seconds: float) -> int:
    """Long enough to seek through the whole track: max(configured TTL, duration + margin)."""
    return max(
        ctx.settings.playback_ttl_seconds, math.ceil(duration_seconds) + PLAYBACK_MARGIN_SECONDS
    )


async def get_job(
    ctx: ServiceContext, principal: Principal, job_id: str, base_url: str
) -> dict[str, Any]:
    """The caller's job; a succeeded one with a freshly signed URL and its track summary."""
    async with ctx.db.read() as conn:
        row = await store.get_job(conn, principal.org_id, principal.user_id, job_id)
        if row is None:
            raise NotFound("Generation job not found.")
        track_row = None
        if row["status"] == store.SUCCEEDED and row["result_track_id"]:
            track_row = await get_readable_track(
                conn, principal.org_id, principal.user_id, row["result_track_id"]
            )
    if track_row is None:
        return {**job_view(row), "recipe": None}
    expires_at = int(utcnow().timestamp()) + playback_ttl(
        ctx, track_row["measured_duration_seconds"]
    )
    url = ctx.storage.playback_url(track_row["storage_key"], expires_at, base_url)
    # Extra field on single-job views: the plan the track was made from.
    view = job_view(row, playback_url=url, track=track_summary(track_row, url))
    return {**view, "recipe": track_row["recipe"]}


async def list_jobs(
    ctx: ServiceContext, principal: Principal, *, status: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """One page of the caller's jobs, newest first; never URLs or tracks."""
    params: dict[str, Any] = {"org_id": principal.org_id, "user_id": principal.user_id}
    params |= {"limit": limit, "offset": offset}
    statement = store.LIST_JOBS
    if status is not None:
        statement = store.LIST_JOBS_BY_STATUS
        params["status"] = status
    # The index walks offset + limit entries: inline while that is small.
    rows = await ctx.db.fetch_all(statement, params, bounded=offset + limit <= INLINE_SCAN_ROWS)
    return [job_view(row) for row in rows]


async def cancel_job(
    ctx: ServiceContext, principal: Principal, job_id: str, base_url: str
) -> dict[str, Any]:
    """Ask to cancel; returns the job as it is now."""
    async with ctx.db.write() as conn:
        await store.cancel_job(conn, principal.org_id, principal.user_id, job_id, utcnow())
    return await get_job(ctx, principal, job_id, base_url)
