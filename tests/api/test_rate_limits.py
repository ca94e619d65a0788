"""The per-key rate limit: headers on every authenticated response, 429 + Retry-After when over.

In memory (one process) and through Redis, where two API instances share one bucket per key.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from musicstudio.services.context import ServiceContext, open_rate_limiter
from musicstudio.services.ratelimit import TokenBucketLimiter
from musicstudio.services.ratelimit_redis import RedisTokenBucketLimiter
from tests.conftest import Caller
from tests.helpers import api_client, assert_error, job_body
from tests.processes import free_port
from tests.redis_server import redis_url

BURST = 4
PER_MINUTE = 6  # a token every 10 s: nothing refills during a test


def _limited(ctx: ServiceContext, redis: str | None = None) -> ServiceContext:
    settings = replace(
        ctx.settings, rate_limit_burst=BURST, rate_limit_per_minute=PER_MINUTE, redis_url=redis
    )
    return replace(ctx, settings=settings, rate_limiter=open_rate_limiter(settings))


async def _client(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(ctx) as http:
        yield http
    await ctx.rate_limiter.close()


@pytest.fixture
async def limited(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a small in-memory bucket per key."""
    async for http in _client(_limited(ctx)):
        yield http


def _limits(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


async def test_every_authenticated_response_counts_down_then_429_with_retry_after(
    limited: httpx.AsyncClient, alice: Caller
) -> None:
    before = time.time()
    answers = [
        await limited.get(alice.path("/generations"), headers=alice.headers),  # the hot route
        await limited.post(alice.path("/generations"), json=job_body(), headers=alice.headers),
        await limited.get(alice.path("/generations/mgen_missing"), headers=alice.headers),
        await limited.get(alice.path("/engines"), headers=alice.headers),
    ]
    assert [r.status_code for r in answers] == [200, 202, 404, 200]
    assert [_limits(r)[:2] for r in answers] == [(BURST, 3), (BURST, 2), (BURST, 1), (BURST, 0)]
    reset = _limits(answers[-1])[2]
    # Empty now; full again after BURST tokens at one per 10 s.
    assert before + BURST * 10 - 1 <= reset <= time.time() + BURST * 10 + 1
    assert all("retry-after" not in r.headers for r in answers)

    for over in (
        await limited.get(alice.path("/generations"), headers=alice.headers),
        await limited.post(alice.path("/generations"), json=job_body(), headers=alice.headers),
    ):
        error = assert_error(over, 429, "RATE_LIMITED")
        assert int(over.headers["retry-after"]) == error["details"]["retry_after_seconds"]
        assert 1 <= int(over.headers["retry-after"]) <= 10
        assert _limits(over)[:2] == (BURST, 0)


async def test_buckets_are_per_key_and_anonymous_answers_carry_no_limits(
    limited: httpx.AsyncClient, alice: Caller, bob: Caller
) -> None:
    for _ in range(BURST):
        await limited.get(alice.path("/engines"), headers=alice.headers)
    assert (await limited.get(alice.path("/engines"), headers=alice.headers)).status_code == 429
    bobs = await limited.get(bob.path("/engines"), headers=bob.headers)
    assert bobs.status_code == 200 and _limits(bobs)[1] == BURST - 1
    anonymous = await limited.get(alice.path("/engines"))
    assert anonymous.status_code == 401
    assert "x-ratelimit-limit" not in anonymous.headers


async def test_a_key_spends_its_tokens_on_other_organizations_paths_too(
    limited: httpx.AsyncClient, alice: Caller, carol: Caller
) -> None:
    for _ in range(BURST):
        denied = await limited.get(carol.path("/engines"), headers=alice.headers)
        assert_error(denied, 403, "ORGANIZATION_ACCESS_DENIED")
    assert (await limited.get(alice.path("/engines"), headers=alice.headers)).status_code == 429


async def test_two_api_instances_share_one_bucket_through_redis(
    ctx: ServiceContext, alice: Caller
) -> None:
    url = redis_url()
    first, second = _limited(ctx, url), _limited(ctx, url)
    assert isinstance(first.rate_limiter, RedisTokenBucketLimiter)
    statuses = []
    async for a in _client(first):
        async for b in _client(second):
            for i in range(BURST + 2):
                http = a if i % 2 == 0 else b
                response = await http.get(alice.path("/engines"), headers=alice.headers)
                statuses.append((response.status_code, _limits(response)[1]))
    # Alone, each instance would have allowed BURST; together they allow BURST in all.
    assert statuses == [(200, 3), (200, 2), (200, 1), (200, 0), (429, 0), (429, 0)]


async def test_without_redis_each_process_falls_back_to_its_own_bucket(
    ctx: ServiceContext, alice: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    limited = _limited(ctx, unreachable)
    async for http in _client(limited):
        answers = [
            await http.get(alice.path("/engines"), headers=alice.headers) for _ in range(BURST + 1)
        ]
    assert [r.status_code for r in answers] == [200] * BURST + [429]
    assert "Redis unavailable" in caplog.text


def test_the_in_memory_bucket_is_the_default(ctx: ServiceContext) -> None:
    assert ctx.settings.redis_url is None
    assert isinstance(ctx.rate_limiter, TokenBucketLimiter)
