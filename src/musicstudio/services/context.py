"""Everything a use case needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from musicstudio.config import Settings
from musicstudio.db.database import Database
from musicstudio.engines.registry import EngineRegistry, discover_engines
from musicstudio.security import KeyHasher
from musicstudio.services.policy import ContentPolicy
from musicstudio.services.ratelimit import RateLimiter, TokenBucketLimiter
from musicstudio.storage.base import Storage
from musicstudio.storage.factory import open_storage


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    storage: Storage
    engines: EngineRegistry
    policy: ContentPolicy
    hasher: KeyHasher
    rate_limiter: RateLimiter  # per API key, consulted on every authenticated request

    async def close(self) -> None:
        await self.rate_limiter.close()
        await self.db.dispose()


def open_rate_limiter(settings: Settings) -> RateLimiter:
    """Shared buckets in Redis when ``redis_url`` is set, else this process's own."""
    if settings.redis_url:
        # Imported here: the redis client is only needed by deployments that configure it.
        from musicstudio.services.ratelimit_redis import RedisTokenBucketLimiter

        return RedisTokenBucketLimiter(
            settings.redis_url,
            per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst,
        )
    return TokenBucketLimiter(
        per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )


def build_context(settings: Settings) -> ServiceContext:
    return ServiceContext(
        settings=settings,
        db=Database(settings.database_url),
        storage=open_storage(settings),
        engines=discover_engines(settings),
        policy=ContentPolicy.load(settings.policy_file),
        hasher=KeyHasher(settings.secret_key),
        rate_limiter=open_rate_limiter(settings),
    )
