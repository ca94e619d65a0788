"""``/v1/music/{organization_id}/generations``: create, list, get, cancel."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from musicstudio.api.auth import OrgPrincipal, request_org_principal
from musicstudio.api.context import Context, base_url, context_of
from musicstudio.api.hot import HotRoute
from musicstudio.api.openapi_responses import READ_ERRORS, WRITE_ERRORS, documented
from musicstudio.api.query_params import reject_repeated
from musicstudio.api.schemas import (
    MAX_IDEMPOTENCY_KEY,
    NO_NUL,
    CreateGenerationBody,
    JobDetailOut,
    JobListOut,
    ListGenerationsQuery,
    PathId,
)
from musicstudio.services import generations
from musicstudio.services.context import ServiceContext
from musicstudio.services.generations import NewGeneration
from musicstudio.store.accounts import Principal

router = APIRouter(prefix="/v1/music/{organization_id}/generations", tags=["generations"])


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


@router.get("", response_model=JobListOut, responses=documented(200, READ_ERRORS))
async def list_generations(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    query: Annotated[ListGenerationsQuery, Query()],
) -> Response:
    """The caller's jobs in this organization, newest first.

    Served by ``list_generations_hot`` (registered ahead of this route); this declaration
    gives the operation its OpenAPI entry and answers exactly like it.
    """
    reject_repeated(request.query_params, ListGenerationsQuery)
    return await _list_page(ctx, principal, query)


async def list_generations_hot(request: Request) -> Response:
    """The list as a hot route (``api/hot.py``): the endpoint clients poll most.

    The same steps as the declared route, in the same order: authenticate, check the
    organization, then validate the query with the declared route's own model, so errors
    and bodies are identical.
    """
    ctx = context_of(request)
    principal = await request_org_principal(ctx, request)
    try:
        query = ListGenerationsQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None
    reject_repeated(request.query_params, ListGenerationsQuery)
    return await _list_page(ctx, principal, query)


async def _list_page(
    ctx: ServiceContext, principal: Principal, query: ListGenerationsQuery
) -> Response:
    jobs = await generations.list_jobs(
        ctx, principal, status=query.status, limit=query.limit, offset=query.offset
    )
    # Serialized directly: per-item model validation would cost more than the query.
    return json_response({"jobs": jobs, "limit": query.limit, "offset": query.offset})


# Registered ahead of the FastAPI routes (see ``create_app``).
HOT_ROUTES = (HotRoute(router.prefix, list_generations_hot, methods=["GET"]),)


@router.post(
    "",
    status_code=202,
    response_model=JobDetailOut,
    responses=documented(202, (*WRITE_ERRORS, 409), quota=True),
)
async def create_generation(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    body: CreateGenerationBody,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY,
            pattern=NO_NUL,
        ),
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
    return json_response(job, status_code=202)


@router.get("/{job_id}", response_model=JobDetailOut, responses=documented(200, READ_ERRORS))
async def get_generation(
    organization_id: str, job_id: PathId, principal: OrgPrincipal, ctx: Context, request: Request
) -> Response:
    """The caller's job; a succeeded job carries a freshly signed ``playback_url``."""
    return json_response(await generations.get_job(ctx, principal, job_id, base_url(request)))


@router.post(
    "/{job_id}/cancel", response_model=JobDetailOut, responses=documented(200, WRITE_ERRORS)
)
async def cancel_generation(
    organization_id: str, job_id: PathId, principal: OrgPrincipal, ctx: Context, request: Request
) -> Response:
    """Cancel: immediate when queued, cooperative when running, a no-op when finished."""
    return json_response(await generations.cancel_job(ctx, principal, job_id, base_url(request)))
