"""Share links: create and revoke under ``/v1/music/{organization_id}``, resolve and save under
the public ``/v1/music/shared/{token}``.

The resolve needs no authentication and is rate-limited per client IP with an in-process
token bucket. The IP is ``request.client.host``: behind a reverse proxy that is the proxy's
address unless uvicorn trusts its headers (``--proxy-headers --forwarded-allow-ips=…``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from musicstudio.api.auth import OrgPrincipal, current_principal
from musicstudio.api.context import Context, base_url
from musicstudio.api.openapi_responses import WRITE_ERRORS, documented
from musicstudio.api.routes.generations import json_response
from musicstudio.api.schemas import (
    AcknowledgementOut,
    CreateShareBody,
    LibraryEntryOut,
    PathId,
    SharedContentOut,
    ShareLinkOut,
)
from musicstudio.errors import RateLimited
from musicstudio.services import shares
from musicstudio.services.context import ServiceContext
from musicstudio.services.ratelimit import TokenBucketLimiter
from musicstudio.store.accounts import Principal

# Resolves per client IP: a burst of 30, then one a second. Read when an app first resolves
# (tests lower them before that).
RESOLVE_PER_MINUTE = 60
RESOLVE_BURST = 30

router = APIRouter(tags=["share links"])


def _resolve_limiter(request: Request) -> TokenBucketLimiter:
    """One bucket table per app (so each test's app starts empty)."""
    limiter = getattr(request.app.state, "share_resolve_limiter", None)
    if limiter is None:
        limiter = TokenBucketLimiter(per_minute=RESOLVE_PER_MINUTE, burst=RESOLVE_BURST)
        request.app.state.share_resolve_limiter = limiter
    return limiter


async def limit_per_client_ip(request: Request) -> None:
    """429 with ``Retry-After`` once this IP's bucket is empty."""
    client_ip = request.client.host if request.client else "unknown"
    retry_after = _resolve_limiter(request).acquire(client_ip)
    if retry_after is not None:
        raise RateLimited(
            f"Too many requests for shared links. Retry in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


@router.post(
    "/v1/music/{organization_id}/tracks/{track_id}/share",
    status_code=201,
    response_model=ShareLinkOut,
    responses=documented(201, WRITE_ERRORS),
)
async def share_track(
    organization_id: str,
    track_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    body: CreateShareBody | None = None,
) -> Response:
    """A link to a track you made; the token is shown only in this response."""
    return await _create(ctx, principal, "track", track_id, body, request)


@router.post(
    "/v1/music/{organization_id}/collections/{collection_id}/share",
    status_code=201,
    response_model=ShareLinkOut,
    responses=documented(201, WRITE_ERRORS),
)
async def share_collection(
    organization_id: str,
    collection_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    body: CreateShareBody | None = None,
) -> Response:
    """A link to a collection you own; the token is shown only in this response."""
    return await _create(ctx, principal, "collection", collection_id, body, request)


async def _create(
    ctx: ServiceContext,
    principal: Principal,
    target_type: shares.TargetType,
    target_id: str,
    body: CreateShareBody | None,
    request: Request,
) -> Response:
    options = body or CreateShareBody()
    created = await shares.create_share(
        ctx,
        principal,
        target_type,
        target_id,
        visibility=options.visibility,
        expires_in_days=options.expires_in_days,
        base_url=base_url(request),
    )
    return json_response(created, status_code=201)


@router.delete(
    "/v1/music/{organization_id}/share/{share_id}",
    response_model=AcknowledgementOut,
    responses=documented(200, WRITE_ERRORS),
)
async def revoke_share(
    organization_id: str, share_id: PathId, principal: OrgPrincipal, ctx: Context
) -> Response:
    """Revoke a link you made (again: still 200). Copies already saved stay saved."""
    return json_response(await shares.revoke_share(ctx, principal, share_id))


@router.get(
    "/v1/music/shared/{token}",
    response_model=SharedContentOut,
    responses=documented(200, (404, 429, 503), limit="ip"),
    dependencies=[Depends(limit_per_client_ip)],
)
async def resolve_share(token: str, ctx: Context, request: Request) -> Response:
    """No authentication: what the link shares, with fresh signed URLs and licences."""
    return json_response(await shares.resolve_share(ctx, token, base_url(request)))


@router.post(
    "/v1/music/shared/{token}/save",
    status_code=201,
    response_model=LibraryEntryOut,
    # No organization in the path: the key's own is used, so no 403.
    responses=documented(
        201,
        (401, 404, 413, 429, 503),
        also={200: {"model": LibraryEntryOut, "description": "Already in your library"}},
    ),
)
async def save_shared_track(
    token: str, ctx: Context, principal: Annotated[Principal, Depends(current_principal)]
) -> Response:
    """Save a shared track to your library (in your key's organization): 201, or 200 if it
    was already there."""
    entry, created = await shares.save_shared_track(ctx, principal, token)
    return json_response(entry, status_code=201 if created else 200)
