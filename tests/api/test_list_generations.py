"""GET /generations: the seed's endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import JOB_FIELDS, assert_error, error_fields, insert_job_rows, job_body


async def test_newest_first_with_ties_broken_by_id(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    t0 = datetime(2026, 6, 28, 10, 30, tzinfo=UTC)
    older = await insert_job_rows(ctx, alice.org_id, alice.user_id, 2, created_at=t0)
    tied = await insert_job_rows(ctx, alice.org_id, alice.user_id, 5, created_at=t0 + timedelta(1))
    newest = await insert_job_rows(
        ctx, alice.org_id, alice.user_id, 1, created_at=t0 + timedelta(2)
    )

    response = await client.get(alice.path("/generations"), headers=alice.headers)
    got = [job["id"] for job in response.json()["jobs"]]
    assert got == newest + sorted(tied, reverse=True) + sorted(older, reverse=True)


async def test_seed_example_status_filter_and_limit(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    t0 = datetime(2026, 6, 28, 10, 30, tzinfo=UTC)
    done = await insert_job_rows(
        ctx, alice.org_id, alice.user_id, 3, created_at=t0, status="succeeded"
    )
    await insert_job_rows(ctx, alice.org_id, alice.user_id, 4, created_at=t0, status="failed")

    response = await client.get(
        alice.path("/generations?status=succeeded&limit=20"), headers=alice.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jobs", "limit", "offset"}
    assert body["limit"] == 20 and body["offset"] == 0
    assert sorted(j["id"] for j in body["jobs"]) == sorted(done)
    for job in body["jobs"]:
        assert set(job) == JOB_FIELDS
        assert job["status"] == "succeeded"
        assert job["created_at"] == "2026-06-28T10:30:00Z"
        assert job["playback_url"] is None and job["track"] is None


async def test_pagination_windows(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(60):
        made += await insert_job_rows(
            ctx, alice.org_id, alice.user_id, 1, created_at=t0 + timedelta(seconds=i)
        )
    expected = list(reversed(made))
    default = (await client.get(alice.path("/generations"), headers=alice.headers)).json()
    assert default["limit"] == 50 and [j["id"] for j in default["jobs"]] == expected[:50]
    page = (
        await client.get(alice.path("/generations?limit=7&offset=50"), headers=alice.headers)
    ).json()
    assert page["offset"] == 50 and [j["id"] for j in page["jobs"]] == expected[50:57]
    tail = (await client.get(alice.path("/generations?offset=58"), headers=alice.headers)).json()
    assert [j["id"] for j in tail["jobs"]] == expected[58:]
    beyond = (
        await client.get(alice.path("/generations?offset=1000"), headers=alice.headers)
    ).json()
    assert beyond["jobs"] == []


async def test_lists_are_scoped_to_the_caller(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller
) -> None:
    mine = await client.post(alice.path("/generations"), json=job_body(), headers=alice.headers)
    await client.post(bob.path("/generations"), json=job_body(), headers=bob.headers)
    await client.post(carol.path("/generations"), json=job_body(), headers=carol.headers)
    listed = (await client.get(alice.path("/generations"), headers=alice.headers)).json()
    assert [j["id"] for j in listed["jobs"]] == [mine.json()["id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=2.5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("status=done", "status"),
        ("status=", "status"),
    ],
)
async def test_bad_params_are_422_not_clamped(
    client: httpx.AsyncClient, alice: Caller, query: str, field: str
) -> None:
    response = await client.get(alice.path(f"/generations?{query}"), headers=alice.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == [field]


async def test_limit_bounds_are_inclusive(client: httpx.AsyncClient, alice: Caller) -> None:
    for limit in (1, 100):
        response = await client.get(
            alice.path(f"/generations?limit={limit}"), headers=alice.headers
        )
        assert response.status_code == 200 and response.json()["limit"] == limit
