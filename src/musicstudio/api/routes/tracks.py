"""``/v1/music/{organization_id}/tracks``: the caller's library, one track, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicstudio.api.auth import OrgPrincipal
from musicstudio.api.context import Context, base_url
from musicstudio.api.openapi_responses import READ_ERRORS, WRITE_ERRORS, documented
from musicstudio.api.query_params import reject_repeated
from musicstudio.api.routes.generations import json_response
from musicstudio.api.schemas import (
    AcknowledgementOut,
    ListTracksQuery,
    PathId,
    TrackDetailOut,
    TrackListOut,
)
from musicstudio.services import tracks

router = APIRouter(prefix="/v1/music/{organization_id}/tracks", tags=["tracks"])


@router.get("", response_model=TrackListOut, responses=documented(200, READ_ERRORS))
async def list_tracks(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    query: Annotated[ListTracksQuery, Query()],
) -> Response:
    """Your library: tracks you made or saved, newest save first."""
    reject_repeated(request.query_params, ListTracksQuery)
    items = await tracks.list_tracks(
        ctx,
        principal,
        mode=query.mode,
        engine=query.engine,
        collection_id=query.collection_id,
        limit=query.limit,
        offset=query.offset,
    )
    return json_response({"items": items, "limit": query.limit, "offset": query.offset})


@router.get("/{track_id}", response_model=TrackDetailOut, responses=documented(200, READ_ERRORS))
async def get_track(
    organization_id: str, track_id: PathId, principal: OrgPrincipal, ctx: Context, request: Request
) -> Response:
    """A track you made or saved, with freshly signed URLs for the master and every stem."""
    return json_response(await tracks.get_track(ctx, principal, track_id, base_url(request)))


@router.delete(
    "/{track_id}", response_model=AcknowledgementOut, responses=documented(200, WRITE_ERRORS)
)
async def delete_track(
    organization_id: str, track_id: PathId, principal: OrgPrincipal, ctx: Context
) -> Response:
    """Delete a track you made: it leaves every library, collection and share link."""
    return json_response(await tracks.delete_track(ctx, principal, track_id))
