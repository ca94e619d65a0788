"""Authentication: ``X-API-Key`` or ``Authorization: Bearer``; one key = one user in one org.

Every authenticated request also takes a token from its key's rate-limit bucket; the decision
rides on the request scope so ``api/ratelimit.py`` can put ``X-RateLimit-*`` on the response.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from musicstudio.api.context import get_context
from musicstudio.api.ratelimit import remember_decision
from musicstudio.errors import AuthenticationRequired, OrganizationAccessDenied, RateLimited
from musicstudio.services import accounts
from musicstudio.services.context import ServiceContext
from musicstudio.store.accounts import Principal

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    ctx: Annotated[ServiceContext, Depends(get_context)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from either header (``X-API-Key`` wins when both are sent)."""
    return await _authenticate(ctx, request, api_key or (bearer.credentials if bearer else None))


async def org_principal(
    organization_id: str, principal: Annotated[Principal, Depends(current_principal)]
) -> Principal:
    """The caller, allowed on this organization's path; says nothing about its objects."""
    return _allowed_on(principal, organization_id)


async def request_org_principal(ctx: ServiceContext, request: Request) -> Principal:
    """``org_principal`` for plain Starlette routes: the same headers, rules and errors."""
    key = request.headers.get("x-api-key")
    if not key:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        key = credentials.strip() if scheme.lower() == "bearer" else None
    principal = await _authenticate(ctx, request, key)
    return _allowed_on(principal, request.path_params["organization_id"])


async def _authenticate(ctx: ServiceContext, request: Request, key: str | None) -> Principal:
    if not key:
        raise AuthenticationRequired(
            "Authentication is required: send your API key in X-API-Key or Authorization: Bearer."
        )
    principal = await accounts.authenticate(ctx, key.strip())
    # Before the organization check: a key cannot dodge its limit on someone else's path.
    decision = await ctx.rate_limiter.take(principal.key_id)
    remember_decision(request.scope, decision)
    if not decision.allowed:
        raise RateLimited(
            f"Too many requests for this API key. Retry in {decision.retry_after} seconds.",
            details={"limit": decision.limit, "retry_after_seconds": decision.retry_after},
        )
    return principal


def _allowed_on(principal: Principal, organization_id: str) -> Principal:
    if principal.org_id != organization_id:
        raise OrganizationAccessDenied("You do not have access to this organization.")
    return principal


OrgPrincipal = Annotated[Principal, Depends(org_principal)]
