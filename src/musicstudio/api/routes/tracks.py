"""``/v1/music/{organization_id}/tracks``: the caller's library, one track, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicstudio.api.auth import OrgPrincipal
from musicstudio.api.context import Context, base_url
from musicstudio.api.routes.generations import json_response
from musicstudio.api.schemas import (
    ERROR_RESPONSES,
    AcknowledgementOut,
    ListTracksQuery,
    TrackDetailOut,
    TrackListOut,
)
from musicstudio.services import tracks

router = APIRouter(prefix="/v1/music/{organization_id}/tracks", tags=["tracks"])


@router.get("", response_model=TrackListOut, responses=ERROR_RESPONSES)
async def list_tracks(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    query: Annotated[ListTracksQuery, Query()],
) -> Response:
    """Your library: tracks you made or saved, newest save first."""
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


@router.get("/{track_id}", response_model=TrackDetailOut, responses=ERROR_RESPONSES)
async def get_track(
    organization_id: str, track_id: str, principal: OrgPrincipal, ctx: Context, request: Request
) -> Response:
    """A track you made or saved, with freshly signed URLs for the master and every stem."""
    return json_response(await tracks.get_track(ctx, principal, track_id, base_url(request)))


@router.delete("/{track_id}", response_model=AcknowledgementOut, responses=ERROR_RESPONSES)
async def delete_track(
    organization_id: str, track_id: str, principal: OrgPrincipal, ctx: Context
) -> Response:
    """Delete a track you made: it leaves every library, collection and share link."""
    return json_response(await tracks.delete_track(ctx, principal, track_id))
