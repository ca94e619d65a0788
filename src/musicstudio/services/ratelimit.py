"""Token buckets: an in-process table per client key, and the decision a request gets.

Per process: with several API processes each allows the full rate (``ratelimit_redis`` shares
one bucket per key across processes). Buckets that have refilled completely carry no
information and are pruned when the table grows large.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RateDecision:
    """One request's verdict and the bucket it leaves behind (the ``X-RateLimit-*`` headers)."""

    allowed: bool
    limit: int  # the bucket's capacity: requests allowed at once
    remaining: int  # whole tokens left after this request
    reset_at: int  # epoch seconds when the bucket is full again
    retry_after: int  # seconds until a request is allowed again (0 when allowed)

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def decide(
    tokens_before: float, burst: int, rate: float, wall_now: float
) -> tuple[RateDecision, float]:
    """Take one token from a bucket holding ``tokens_before``: the decision and tokens left.

    ``rate`` is tokens per second. Shared by the in-memory and the Redis buckets so both
    answer alike.
    """
    allowed = tokens_before >= 1.0
    tokens = tokens_before - 1.0 if allowed else tokens_before
    retry_after = 0 if allowed else max(1, math.ceil((1.0 - tokens) / rate))
    decision = RateDecision(
        allowed=allowed,
        limit=burst,
        remaining=max(0, math.floor(tokens)),
        reset_at=math.ceil(wall_now + (burst - tokens) / rate),
        retry_after=retry_after,
    )
    return decision, tokens


class RateLimiter(Protocol):
    """A per-key limiter the API consults once per authenticated request."""

    async def take(self, key: str) -> RateDecision: ...

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """``burst`` requests at once, refilled at ``per_minute`` requests a minute."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.per_minute = per_minute
        self.burst = burst
        self._rate = per_minute / 60.0  # tokens per second
        self._max_keys = max_keys
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, _Bucket] = {}

    def take_now(self, key: str) -> RateDecision:
        """Take one token for ``key`` (synchronous: no I/O)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        decision, bucket.tokens = decide(bucket.tokens, self.burst, self._rate, self._wall_clock())
        return decision

    async def take(self, key: str) -> RateDecision:
        return self.take_now(key)

    async def close(self) -> None:
        self._buckets.clear()

    def acquire(self, key: str) -> int | None:
        """Take one token for ``key``: None when allowed, else the seconds to wait (≥ 1)."""
        decision = self.take_now(key)
        return None if decision.allowed else decision.retry_after

    def _prune(self, now: float) -> None:
        full_after = self.burst / self._rate
        stale = [k for k, b in self._buckets.items() if now - b.updated >= full_after]
        for key in stale:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            # Still full of active clients: forget the least recently seen half.
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            for key in by_age[: len(by_age) // 2]:
                del self._buckets[key]
