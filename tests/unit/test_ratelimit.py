"""The token bucket's arithmetic, on a clock the test moves."""

from __future__ import annotations

from musicstudio.services.ratelimit import TokenBucketLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock: Clock, per_minute: float = 60, burst: int = 3) -> TokenBucketLimiter:
    return TokenBucketLimiter(per_minute=per_minute, burst=burst, clock=clock, wall_clock=clock)


def test_a_burst_then_refusals_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    taken = [limiter.take_now("k") for _ in range(4)]
    assert [d.allowed for d in taken] == [True, True, True, False]
    assert [d.remaining for d in taken] == [2, 1, 0, 0]
    assert {d.limit for d in taken} == {3}
    # One token a second: full again 3 s after the bucket was emptied.
    assert taken[2].reset_at == 1003
    assert taken[3].retry_after == 1 and taken[3].headers()["Retry-After"] == "1"
    assert "Retry-After" not in taken[0].headers()


def test_tokens_refill_with_time_up_to_the_burst_only() -> None:
    clock = Clock()
    limiter = _limiter(clock, per_minute=30)  # a token every 2 s
    for _ in range(3):
        limiter.take_now("k")
    clock.now += 1
    refused = limiter.take_now("k")
    assert not refused.allowed and refused.retry_after == 1
    clock.now += 1
    assert limiter.take_now("k").allowed
    clock.now += 3600
    after_an_hour = limiter.take_now("k")
    assert after_an_hour.remaining == 2, "a bucket never holds more than its burst"


def test_keys_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = _limiter(clock, burst=1)
    assert limiter.take_now("a").allowed
    assert not limiter.take_now("a").allowed
    assert limiter.take_now("b").allowed
