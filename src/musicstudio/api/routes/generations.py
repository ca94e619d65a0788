"""``/v1/music/{organization_id}/generations``: create, list, get, cancel."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from musicstudio.api.auth import OrgPrincipal
from musicstudio.api.context import Context, base_url
from musicstudio.api.schemas import (
    ERROR_RESPONSES,
    MAX_IDEMPOTENCY_KEY,
    CreateGenerationBody,
    JobDetailOut,
    JobListOut,
    JobStatus,
)
from musicstudio.services import generations
from musicstudio.services.generations import NewGeneration

router = APIRouter(prefix="/v1/music/{organization_id}/generations", tags=["generations"])


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


@router.get("", response_model=JobListOut, responses=ERROR_RESPONSES)
async def list_generations(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    status: Annotated[JobStatus | None, Query(description="Filter by job status")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (1-100)")] = 50,
    offset: Annotated[int, Query(ge=0, description="Jobs to skip")] = 0,
) -> Response:
    """The caller's jobs in this organization, newest first."""
    jobs = await generations.list_jobs(ctx, principal, status=status, limit=limit, offset=offset)
    # Serialized directly: per-item model validation would cost more than the query.
    return _json({"jobs": jobs, "limit": limit, "offset": offset})


@router.post("", status_code=202, response_model=JobDetailOut, responses=ERROR_RESPONSES)
async def create_generation(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    body: CreateGenerationBody,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY),
    ] = None,
) -> Response:
    """Submit a job; it is normally ``queued`` (or ``refused`` by the content policy)."""
    req = NewGeneration(
        engine=body.engine,
        prompt=body.prompt,
        duration_seconds=body.duration_seconds,
        mode=body.mode,
        instrumental=body.instrumental,
        lyrics=body.lyrics,
        seed_track_id=body.seed_track_id,
        style_tags=tuple(body.style_tags),
        title=body.title,
        seed=body.seed,
        output_format=body.output_format,
    )
    key = idempotency_key if idempotency_key is not None else body.idempotency_key
    job = await generations.create_job(ctx, principal, req, key, base_url(request))
    return _json(job, status_code=202)


@router.get("/{job_id}", response_model=JobDetailOut, responses=ERROR_RESPONSES)
async def get_generation(
    organization_id: str, job_id: str, principal: OrgPrincipal, ctx: Context, request: Request
) -> Response:
    """The caller's job; a succeeded job carries a freshly signed ``playback_url``."""
    return _json(await generations.get_job(ctx, principal, job_id, base_url(request)))


@router.post("/{job_id}/cancel", response_model=JobDetailOut, responses=ERROR_RESPONSES)
async def cancel_generation(
    organization_id: str, job_id: str, principal: OrgPrincipal, ctx: Context, request: Request
) -> Response:
    """Cancel: immediate when queued, cooperative when running, a no-op when finished."""
    return _json(await generations.cancel_job(ctx, principal, job_id, base_url(request)))
