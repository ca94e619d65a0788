"""``/v1/music/{organization_id}/collections``: the caller's ordered sets of tracks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from musicstudio.api.auth import OrgPrincipal
from musicstudio.api.context import Context
from musicstudio.api.openapi_responses import READ_ERRORS, WRITE_ERRORS, documented
from musicstudio.api.query_params import reject_repeated
from musicstudio.api.routes.generations import json_response
from musicstudio.api.schemas import (
    AcknowledgementOut,
    AddCollectionTrackBody,
    CollectionEntryOut,
    CollectionListOut,
    CollectionOut,
    CollectionTrackListOut,
    CreateCollectionBody,
    ListCollectionsQuery,
    ListCollectionTracksQuery,
    PathId,
    ReorderCollectionBody,
    UpdateCollectionBody,
)
from musicstudio.services import collections

router = APIRouter(prefix="/v1/music/{organization_id}/collections", tags=["collections"])


@router.post(
    "", status_code=201, response_model=CollectionOut, responses=documented(201, WRITE_ERRORS)
)
async def create_collection(
    organization_id: str, principal: OrgPrincipal, ctx: Context, body: CreateCollectionBody
) -> Response:
    """Create an empty collection (``track_count`` 0)."""
    created = await collections.create_collection(ctx, principal, body.model_dump())
    return json_response(created, status_code=201)


@router.get("", response_model=CollectionListOut, responses=documented(200, READ_ERRORS))
async def list_collections(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    query: Annotated[ListCollectionsQuery, Query()],
) -> Response:
    """The caller's collections, newest first; ``track_count`` is null in lists."""
    reject_repeated(request.query_params, ListCollectionsQuery)
    items = await collections.list_collections(
        ctx, principal, limit=query.limit, offset=query.offset
    )
    return json_response({"items": items, "limit": query.limit, "offset": query.offset})


@router.get(
    "/{collection_id}", response_model=CollectionOut, responses=documented(200, READ_ERRORS)
)
async def get_collection(
    organization_id: str, collection_id: PathId, principal: OrgPrincipal, ctx: Context
) -> Response:
    """The caller's collection with its track count."""
    return json_response(await collections.get_collection(ctx, principal, collection_id))


@router.patch(
    "/{collection_id}", response_model=CollectionOut, responses=documented(200, WRITE_ERRORS)
)
async def update_collection(
    organization_id: str,
    collection_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    body: UpdateCollectionBody,
) -> Response:
    """Partial update: absent fields stay; an explicit null clears (``name`` cannot be null)."""
    changes = body.model_dump(exclude_unset=True)
    return json_response(
        await collections.update_collection(ctx, principal, collection_id, changes)
    )


@router.delete(
    "/{collection_id}",
    response_model=AcknowledgementOut,
    responses=documented(200, WRITE_ERRORS),
)
async def delete_collection(
    organization_id: str, collection_id: PathId, principal: OrgPrincipal, ctx: Context
) -> Response:
    """Soft delete; afterwards the collection answers 404."""
    return json_response(await collections.delete_collection(ctx, principal, collection_id))


@router.get(
    "/{collection_id}/tracks",
    response_model=CollectionTrackListOut,
    responses=documented(200, READ_ERRORS),
)
async def list_collection_tracks(
    organization_id: str,
    collection_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    query: Annotated[ListCollectionTracksQuery, Query()],
) -> Response:
    """The collection's tracks by position; deleted tracks are left out."""
    reject_repeated(request.query_params, ListCollectionTracksQuery)
    page = await collections.list_tracks(
        ctx, principal, collection_id, limit=query.limit, offset=query.offset
    )
    return json_response(page)


@router.post(
    "/{collection_id}/tracks",
    status_code=201,
    response_model=CollectionEntryOut,
    responses=documented(
        201,
        WRITE_ERRORS,
        also={
            200: {"model": CollectionEntryOut, "description": "Already there; its place is kept"}
        },
    ),
)
async def add_collection_track(
    organization_id: str,
    collection_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    body: AddCollectionTrackBody,
) -> Response:
    """Append a track you can read in this organization: 201 when added, 200 if already in."""
    entry, added = await collections.add_track(ctx, principal, collection_id, body.track_id)
    return json_response(entry, status_code=201 if added else 200)


@router.delete(
    "/{collection_id}/tracks/{track_id}",
    response_model=AcknowledgementOut,
    responses=documented(200, WRITE_ERRORS),
)
async def remove_collection_track(
    organization_id: str,
    collection_id: PathId,
    track_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
) -> Response:
    """Take a track out of the collection; removing one that is not there succeeds too."""
    return json_response(await collections.remove_track(ctx, principal, collection_id, track_id))


@router.patch(
    "/{collection_id}/order",
    response_model=AcknowledgementOut,
    responses=documented(200, WRITE_ERRORS),
)
async def reorder_collection(
    organization_id: str,
    collection_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    body: ReorderCollectionBody,
) -> Response:
    """Listed tracks take their index as position; the others follow in their order."""
    return json_response(
        await collections.reorder(ctx, principal, collection_id, body.ordered_track_ids)
    )
