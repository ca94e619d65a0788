"""``GET /v1/music/{organization_id}/engines``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from musicstudio.api.auth import OrgPrincipal
from musicstudio.api.context import Context
from musicstudio.api.openapi_responses import READ_ERRORS, documented
from musicstudio.api.schemas import EngineListOut

router = APIRouter(prefix="/v1/music/{organization_id}/engines", tags=["engines"])


@router.get("", response_model=EngineListOut, responses=documented(200, READ_ERRORS))
async def list_engines(
    organization_id: str, principal: OrgPrincipal, ctx: Context
) -> dict[str, Any]:
    """The engines this deployment offers, with truthful licence fields."""
    return {"engines": [engine.capabilities().as_dict() for engine in ctx.engines.all()]}
