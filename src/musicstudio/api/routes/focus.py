"""``/v1/music/{organization_id}/focus/sessions``: start, poll, end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from musicstudio.api.auth import OrgPrincipal
from musicstudio.api.context import Context, base_url
from musicstudio.api.openapi_responses import READ_ERRORS, WRITE_ERRORS, documented
from musicstudio.api.routes.generations import json_response
from musicstudio.api.schemas import FocusSessionOut, PathId, StartFocusSessionBody
from musicstudio.services import focus
from musicstudio.services.focus import NewFocusSession

router = APIRouter(prefix="/v1/music/{organization_id}/focus/sessions", tags=["focus sessions"])


@router.post(
    "",
    status_code=202,
    response_model=FocusSessionOut,
    responses=documented(202, WRITE_ERRORS, quota=True),
)
async def start_focus_session(
    organization_id: str,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
    body: StartFocusSessionBody,
) -> Response:
    """Start a session: its ~2-minute segments are generated in the background."""
    new = NewFocusSession(
        goal=body.goal,
        target_minutes=body.target_minutes,
        custom_prompt=body.custom_prompt,
        intensity=body.intensity,
        divergence=body.divergence,
        engine=body.engine,
    )
    session = await focus.start_session(ctx, principal, new, base_url(request))
    return json_response(session, status_code=202)


@router.get("/{session_id}", response_model=FocusSessionOut, responses=documented(200, READ_ERRORS))
async def get_focus_session(
    organization_id: str,
    session_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
) -> Response:
    """The session and its ready segments, with freshly signed URLs."""
    return json_response(await focus.get_session(ctx, principal, session_id, base_url(request)))


@router.post(
    "/{session_id}/end",
    response_model=FocusSessionOut,
    responses=documented(200, WRITE_ERRORS),
)
async def end_focus_session(
    organization_id: str,
    session_id: PathId,
    principal: OrgPrincipal,
    ctx: Context,
    request: Request,
) -> Response:
    """No new segments; ready ones stay playable. Idempotent."""
    return json_response(await focus.end_session(ctx, principal, session_id, base_url(request)))
