"""Everything a use case needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from musicstudio.config import Settings
from musicstudio.db.database import Database
from musicstudio.engines.registry import EngineRegistry, discover_engines
from musicstudio.security import KeyHasher
from musicstudio.services.policy import ContentPolicy
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

    async def close(self) -> None:
        await self.db.dispose()


def build_context(settings: Settings) -> ServiceContext:
    return ServiceContext(
        settings=settings,
        db=Database(settings.database_url),
        storage=open_storage(settings),
        engines=discover_engines(settings),
        policy=ContentPolicy.load(settings.policy_file),
        hasher=KeyHasher(settings.secret_key),
    )
