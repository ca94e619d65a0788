"""The API on S3 storage: /readyz follows the S3 endpoint; /media/ is not served."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace

import httpx
import pytest

from musicstudio.api.app import create_app
from musicstudio.config import Settings
from musicstudio.services.context import build_context
from musicstudio.storage.s3 import S3Storage
from tests.helpers import assert_error
from tests.processes import free_port
from tests.seaweed import SeaweedS3

ApiOn = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def api_on(settings: Settings) -> ApiOn:
    """The app in process with ``MUSICSTUDIO_STORAGE_URL`` set to a given URL."""

    @asynccontextmanager
    async def api(storage_url: str) -> AsyncIterator[httpx.AsyncClient]:
        ctx = build_context(replace(settings, storage_url=storage_url))
        assert isinstance(ctx.storage, S3Storage)
        transport = httpx.ASGITransport(app=create_app(ctx=ctx), raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                yield http
        finally:
            await ctx.close()

    return api


async def test_ready_when_the_bucket_answers(s3: SeaweedS3, prefix: str, api_on: ApiOn) -> None:
    async with api_on(s3.storage_url(prefix)) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": "ok", "storage": "ok"}


async def test_not_ready_when_the_s3_endpoint_is_down(s3: SeaweedS3, api_on: ApiOn) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with api_on(f"s3://{s3.bucket}?endpoint_url={down}&region={s3.region}") as http:
        response = await http.get("/readyz")
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert error["message"] == "The storage is not reachable."
    assert down not in response.text, "the reason is logged, not shown"


async def test_not_ready_when_the_bucket_is_missing(s3: SeaweedS3, api_on: ApiOn) -> None:
    url = f"s3://no-such-bucket?endpoint_url={s3.endpoint_url}&region={s3.region}"
    async with api_on(url) as http:
        response = await http.get("/readyz")
    assert_error(response, 503, "SERVICE_UNAVAILABLE")


@pytest.mark.usefixtures("fake_credentials")
async def test_media_route_is_not_found_on_s3_storage(api_on: ApiOn) -> None:
    async with api_on("s3://bucket?endpoint_url=http://127.0.0.1:9") as http:
        response = await http.get("/media/tracks/o/t.mp3?expires=1&kid=k&sig=s")
    assert_error(response, 404, "RESOURCE_NOT_FOUND")
