"""The reads every request makes (key lookup, list page) run on the plain drivers; on both
backends they give the same answers, and a lost PostgreSQL is a 503, not a traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from musicstudio.api.app import create_app
from musicstudio.db.tables import api_keys
from musicstudio.services import accounts
from musicstudio.services.context import ServiceContext, build_context
from tests.conftest import Caller, make_settings
from tests.helpers import assert_error, insert_job_rows

T0 = datetime(2026, 6, 1, 12, 0, 5, 123456, tzinfo=UTC)


async def test_list_page_and_key_lookup_read_alike_on_both_backends(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    ids = await insert_job_rows(ctx, alice.org_id, alice.user_id, 3, created_at=T0)
    for headers in (alice.headers, {"Authorization": f"Bearer {alice.api_key}"}):
        response = await client.get(alice.path("/generations?limit=2"), headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert [job["created_at"] for job in page["jobs"]] == ["2026-06-01T12:00:05Z"] * 2
        assert [job["id"] for job in page["jobs"]] == sorted(ids, reverse=True)[:2]
        assert page["jobs"][0]["status"] == "queued" and page["jobs"][0]["progress"] == 0

    async with ctx.db.read() as conn:
        key_id = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.user_id == alice.user_id))
        ).scalar_one()
    await accounts.revoke_key(ctx, key_id)
    revoked = await client.get(alice.path("/generations"), headers=alice.headers)
    assert_error(revoked, 401, "INVALID_API_KEY")


async def test_list_page_times_are_whole_seconds_in_utc(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    later = T0 + timedelta(hours=30, microseconds=876544)
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 1, created_at=later)
    page = (await client.get(alice.path("/generations"), headers=alice.headers)).json()
    assert page["jobs"][0]["created_at"] == "2026-06-02T18:00:06Z"


async def test_unreachable_postgresql_is_a_503_envelope(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, database_url="postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"
    )
    context = build_context(settings)
    app = create_app(ctx=context)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get(
                "/v1/music/org_x/generations", headers={"X-API-Key": "msk_" + "a" * 40}
            )
    finally:
        await context.close()
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["retry-after"] == "1"
