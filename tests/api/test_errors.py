"""No traceback ever reaches a client; unknown routes answer in the envelope."""

from __future__ import annotations

import httpx

from musicstudio.api.app import create_app
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import assert_error


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nothing-here"), 404, "RESOURCE_NOT_FOUND")


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.delete(alice.path("/generations"), headers=alice.headers)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


async def test_unexpected_error_is_500_without_details(ctx: ServiceContext) -> None:
    app = create_app(ctx=ctx)

    async def boom() -> None:
        raise RuntimeError("secret detail at /srv/musicstudio/private.py line 3")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom")
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.text
    assert "/srv" not in response.text
    assert error["type"] == "server_error"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_openapi_lists_the_music_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "/v1/music/{organization_id}/generations" in paths
    assert set(paths["/v1/music/{organization_id}/generations"]) == {"get", "post"}
    assert "/v1/music/{organization_id}/generations/{job_id}/cancel" in paths
    assert "/v1/music/{organization_id}/engines" in paths
