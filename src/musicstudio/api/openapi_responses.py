"""What each operation documents it may answer: every error status with the envelope's schema,
and the headers responses carry.

The OpenAPI document is the contract clients code against (and ``tests/contract`` checks every
response against), so a status a route can produce but does not list here is a defect.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from musicstudio.api.schemas import ErrorEnvelope

Responses = dict[int | str, dict[str, Any]]

# Every operation behind an API key; writes can also be too large.
READ_ERRORS = (401, 403, 404, 422, 429, 503)
WRITE_ERRORS = (*READ_ERRORS, 413)


def _header(description: str, *, integer: bool = False, required: bool = True) -> dict[str, Any]:
    return {
        "description": description,
        "required": required,
        "schema": {"type": "integer", "minimum": 0} if integer else {"type": "string"},
    }


_REQUEST_ID = {"x-request-id": _header("This request's id; an error's trace_id equals it.")}
# Authentication takes the key's token before anything else can fail, so from then on every
# response carries the bucket's state (api/ratelimit.py).
_KEY_LIMIT = {
    "X-RateLimit-Limit": _header("Requests this API key may make at once.", integer=True),
    "X-RateLimit-Remaining": _header("Requests left before the limit.", integer=True),
    "X-RateLimit-Reset": _header("When the bucket is full again (epoch seconds).", integer=True),
}
_RETRY_AFTER = _header("Seconds to wait before retrying.", integer=True)

_ERRORS: dict[int, str] = {
    401: (
        "Missing credentials (AUTHENTICATION_REQUIRED), or an unknown, revoked or expired API "
        "key (INVALID_API_KEY and the reference's other 401 codes)."
    ),
    403: (
        "The key's organization is not the path's (ORGANIZATION_ACCESS_DENIED), or the caller "
        "may read the object but not do this to it (INSUFFICIENT_PERMISSIONS)."
    ),
    404: (
        "RESOURCE_NOT_FOUND: no such object, or one of another user or organization "
        "(answered exactly alike)."
    ),
    409: "CONFLICT: the request collides with another one still in flight.",
    413: "PAYLOAD_TOO_LARGE: the body is larger than the configured limit (64 KB by default).",
    422: (
        "VALIDATION_ERROR (or IDEMPOTENCY_KEY_REUSED): details.errors lists {field, message} "
        "for each invalid part of the request."
    ),
    503: "SERVICE_UNAVAILABLE: the database or the audio storage is briefly unreachable.",
}
_KEY_RATE_LIMITED = "RATE_LIMITED: too many requests for this API key; retry after Retry-After."
_QUOTA = (
    " QUOTA_EXCEEDED: the organization already has as many queued and running jobs as it "
    "may (no Retry-After: retry once some finish)."
)
_IP_RATE_LIMITED = "RATE_LIMITED: too many requests from this address; retry after Retry-After."


def documented(
    success: int,
    errors: Collection[int],
    *,
    limit: Literal["key", "ip", "none"] = "key",
    quota: bool = False,
    also: Responses | None = None,
) -> Responses:
    """The ``responses=`` of one route: its success status(es) with their headers, then each
    error status as the envelope.

    ``limit`` says which rate limit applies: per API key (``X-RateLimit-*`` on every response
    after authentication), per client address (a 429 with ``Retry-After`` only), or none.
    ``quota`` adds QUOTA_EXCEEDED to the 429 (creates that enqueue jobs). ``also`` lists
    further success responses (e.g. a 200 beside a 201), which get the same headers.
    """
    after_auth = {**_REQUEST_ID, **(_KEY_LIMIT if limit == "key" else {})}
    responses: Responses = {}
    for status, extra in {success: {}, **(also or {})}.items():
        responses[status] = {**extra, "headers": after_auth}
    for status in errors:
        if status == 429:
            continue
        headers = after_auth if status in (403, 404, 409) else dict(_REQUEST_ID)
        if status == 503:
            headers = {**headers, "Retry-After": _RETRY_AFTER}
        responses[status] = _error(_ERRORS[status], headers)
    if 429 in errors:
        responses[429] = _too_many(limit, quota)
    return responses


def _too_many(limit: Literal["key", "ip", "none"], quota: bool) -> dict[str, Any]:
    if limit == "ip":
        return _error(_IP_RATE_LIMITED, {**_REQUEST_ID, "Retry-After": _RETRY_AFTER})
    # A quota refusal carries no Retry-After: only the rate limit knows when to come back.
    retry_after = {**_RETRY_AFTER, "required": not quota}
    return _error(
        _KEY_RATE_LIMITED + (_QUOTA if quota else ""),
        {**_REQUEST_ID, **_KEY_LIMIT, "Retry-After": retry_after},
    )


def _error(description: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description, "headers": headers}
