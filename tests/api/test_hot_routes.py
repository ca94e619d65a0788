"""Hot routes (``api/hot.py``) answer exactly like the FastAPI routes they stand in front of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from musicstudio.api.app import create_app
from musicstudio.api.hot import HotRoute
from musicstudio.clock import utcnow
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import insert_job_rows


@pytest.fixture
async def declared(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    """The API without its hot routes: every request reaches the declared FastAPI route."""
    app = create_app(ctx=ctx)
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, HotRoute)]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _comparable(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    if "error" in body:  # per-request values
        body["error"].pop("trace_id")
        body["error"].pop("timestamp")
    return response.status_code, response.headers["content-type"], body


async def test_list_answers_like_the_declared_route(
    client: httpx.AsyncClient,
    declared: httpx.AsyncClient,
    ctx: ServiceContext,
    alice: Caller,
    carol: Caller,
) -> None:
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 7, created_at=utcnow())
    bearer = {"Authorization": f"Bearer {alice.api_key}"}
    cases: list[tuple[str, dict[str, str]]] = [
        ("", alice.headers),
        ("?limit=3&offset=2", alice.headers),
        ("?status=queued&limit=100", alice.headers),
        ("?status=succeeded", bearer),
        ("?limit=3&limit=4&unknown=1", alice.headers),
        ("?limit=0&offset=-1&status=done", alice.headers),
        ("?limit=x", alice.headers),
        ("?status=", alice.headers),
        ("", {}),
        ("", {"Authorization": f"Basic {alice.api_key}"}),
        ("", {"X-API-Key": "msk_" + "0" * 40}),
        ("", {"X-API-Key": "not-a-key"}),
        ("?limit=0", carol.headers),  # another organization's key: 403 before validation
    ]
    statuses = set()
    for query, headers in cases:
        url = alice.path(f"/generations{query}")
        hot, slow = await client.get(url, headers=headers), await declared.get(url, headers=headers)
        assert _comparable(hot) == _comparable(slow), (query, headers)
        statuses.add(hot.status_code)
    assert statuses == {200, 401, 403, 422}


def test_declared_list_parameters_are_in_the_openapi_document(ctx: ServiceContext) -> None:
    operation = create_app(ctx=ctx).openapi()["paths"]["/v1/music/{organization_id}/generations"]
    params = {p["name"]: p for p in operation["get"]["parameters"] if p["in"] == "query"}
    assert set(params) == {"status", "limit", "offset"}
    limit = params["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 50)
    assert params["offset"]["schema"]["minimum"] == 0
    statuses = params["status"]["schema"]["anyOf"][0]["enum"]
    assert statuses == ["queued", "running", "succeeded", "failed", "cancelled", "refused"]
