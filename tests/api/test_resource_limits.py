"""Resource limits (OWASP API4): field sizes, body size, and the organization's live-job cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import func, select

from musicstudio.db.tables import focus_sessions, generation_jobs
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import api_client, assert_error, error_fields, job_body

CAP = 3  # live jobs an organization may have in the capped API


@pytest.mark.parametrize(
    ("field", "ok", "too_big"),
    [
        ("prompt", "p" * 2000, "p" * 2001),
        ("title", "t" * 200, "t" * 201),
        ("style_tags", ["tag"] * 20, ["tag"] * 21),
        ("style_tags", ["x" * 50], ["x" * 51]),
    ],
    ids=["prompt-2000", "title-200", "tags-20", "tag-50-chars"],
)
async def test_field_caps_accept_the_limit_and_refuse_one_more(
    client: httpx.AsyncClient, alice: Caller, field: str, ok: object, too_big: object
) -> None:
    url, headers = alice.path("/generations"), alice.headers
    accepted = await client.post(url, json=job_body(**{field: ok}), headers=headers)
    assert accepted.status_code == 202, accepted.text
    refused = await client.post(url, json=job_body(**{field: too_big}), headers=headers)
    assert_error(refused, 422, "VALIDATION_ERROR")
    assert error_fields(refused)[0].startswith(field)


async def test_lyrics_are_capped_at_5000_characters(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    refused = await client.post(
        alice.path("/generations"), json=job_body(lyrics="la " * 1667), headers=alice.headers
    )
    assert_error(refused, 422, "VALIDATION_ERROR")
    assert error_fields(refused) == ["lyrics"]
    assert "5000" in refused.json()["error"]["details"]["errors"][0]["message"]


def _body_of_size(size: int) -> bytes:
    """A JSON create body of exactly ``size`` bytes (its prompt pads it)."""
    head, tail = b'{"engine":"studio","duration_seconds":2,"prompt":"', b'"}'
    return head + b"p" * (size - len(head) - len(tail)) + tail


async def _job_count(ctx: ServiceContext) -> int:
    async with ctx.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(generation_jobs))).scalar())


async def test_a_body_over_64_kb_is_413_and_creates_nothing(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    url, headers = alice.path("/generations"), {**alice.headers, "content-type": "application/json"}
    at_limit = await client.post(url, content=_body_of_size(65_536), headers=headers)
    # Within the limit: read and validated (this prompt is merely too long for the field).
    assert_error(at_limit, 422, "VALIDATION_ERROR")
    over = await client.post(url, content=_body_of_size(65_537), headers=headers)
    error = assert_error(over, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_body_bytes": 65_536}
    assert await _job_count(ctx) == 0


async def test_a_chunked_body_without_length_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    def chunks() -> Iterator[bytes]:
        body = _body_of_size(200_000)
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks():
            yield chunk

    headers = {**alice.headers, "content-type": "application/json"}
    response = await client.post(alice.path("/generations"), content=stream(), headers=headers)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await _job_count(ctx) == 0

    async def small() -> AsyncIterator[bytes]:
        yield b'{"engine":"studio","prompt":"calm piano",'
        yield b'"duration_seconds":2}'

    accepted = await client.post(alice.path("/generations"), content=small(), headers=headers)
    assert accepted.status_code == 202, "a chunked body within the limit is replayed intact"


@pytest.fixture
async def capped(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    """The API with at most ``CAP`` live jobs per organization."""
    small = replace(ctx, settings=replace(ctx.settings, max_active_jobs_per_org=CAP))
    async with api_client(small) as http:
        yield http


async def test_an_organization_over_its_live_job_cap_gets_429_quota_exceeded(
    capped: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller
) -> None:
    url = alice.path("/generations")
    first = await capped.post(
        url, json=job_body(), headers={**alice.headers, "Idempotency-Key": "k1"}
    )
    for caller in (alice, bob):  # the cap is the organization's, shared by its users
        assert (await capped.post(url, json=job_body(), headers=caller.headers)).status_code == 202
    over = await capped.post(url, json=job_body(), headers=bob.headers)
    error = assert_error(over, 429, "QUOTA_EXCEEDED")
    assert error["details"] == {"limit": CAP, "live_jobs": CAP, "requested": 1}
    replay = await capped.post(
        url, json=job_body(), headers={**alice.headers, "Idempotency-Key": "k1"}
    )
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    # A refused prompt is never queued, so it takes no place; another organization is apart.
    refused = await capped.post(
        url, json=job_body(prompt="a pop song in the style of Taylor Swift"), headers=alice.headers
    )
    assert refused.status_code == 202 and refused.json()["status"] == "refused"
    other = await capped.post(carol.path("/generations"), json=job_body(), headers=carol.headers)
    assert other.status_code == 202
    # A finished (here: cancelled) job frees its place.
    job_id = first.json()["id"]
    cancel = await capped.post(f"{url}/{job_id}/cancel", headers=alice.headers)
    assert cancel.json()["status"] == "cancelled"
    assert (await capped.post(url, json=job_body(), headers=bob.headers)).status_code == 202


async def test_a_focus_session_that_does_not_fit_the_cap_is_refused_whole(
    capped: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    url = alice.path("/focus/sessions")
    # Four two-minute segments: more than the organization may have live at once.
    over = await capped.post(
        url, json={"goal": "focus", "target_minutes": 8}, headers=alice.headers
    )
    assert_error(over, 429, "QUOTA_EXCEEDED")
    async with ctx.db.read() as conn:
        sessions = (await conn.execute(select(func.count()).select_from(focus_sessions))).scalar()
    assert sessions == 0 and await _job_count(ctx) == 0
    fits = await capped.post(
        url, json={"goal": "focus", "target_minutes": 6}, headers=alice.headers
    )
    assert fits.status_code == 202, fits.text


async def test_concurrent_creates_never_exceed_the_cap(
    capped: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    """Twenty creates at once for three places: exactly three are accepted."""
    responses = await asyncio.gather(
        *(
            capped.post(alice.path("/generations"), json=job_body(), headers=alice.headers)
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * CAP + [429] * (20 - CAP)
    assert await _job_count(ctx) == CAP
