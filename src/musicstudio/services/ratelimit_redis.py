"""Token buckets shared by every API process through Redis (``MUSICSTUDIO_REDIS_URL``).

One Lua script refills and takes atomically on the server, on the server's clock, so
processes on hosts with skewed clocks share one honest bucket. If Redis cannot answer, each
process falls back to its own in-memory bucket (the limit still holds per process) and says so
in the log, rather than failing requests or letting them through unlimited.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from musicstudio.services.ratelimit import RateDecision, TokenBucketLimiter, decide

log = logging.getLogger("musicstudio.ratelimit")

KEY_PREFIX = "musicstudio:ratelimit:"
TIMEOUT_SECONDS = 0.25  # a slow Redis must not hold every request
WARN_EVERY_SECONDS = 30.0

# KEYS[1] bucket; ARGV: rate (tokens/s), burst. Refill by elapsed server time, then return the
# tokens *before* this request's take (as a string: Lua numbers become integers in replies)
# and the server time; the caller decides and the script stores the result of one take.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local before = tokens
if tokens >= 1 then
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {tostring(before), tostring(now)}
"""


class RedisTokenBucketLimiter:
    """The same buckets as ``TokenBucketLimiter``, kept in Redis."""

    def __init__(self, url: str, *, per_minute: float, burst: int) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be positive and burst at least 1")
        self.burst = burst
        self._rate = per_minute / 60.0
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._script = self._client.register_script(_TAKE)
        self._fallback = TokenBucketLimiter(per_minute=per_minute, burst=burst)
        self._warned_at = -WARN_EVERY_SECONDS

    async def take(self, key: str) -> RateDecision:
        try:
            before, server_now = await self._script(
                keys=[KEY_PREFIX + key], args=[self._rate, self.burst]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn(exc)
            return self._fallback.take_now(key)
        decision, _ = decide(float(before), self.burst, self._rate, float(server_now))
        return decision

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate limit: Redis unavailable (%s); using per-process buckets", exc)

    async def close(self) -> None:
        await self._client.aclose()
