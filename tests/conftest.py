"""Shared fixtures: a migrated SQLite database per test, the app in process, three callers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from musicstudio.config import Settings
from musicstudio.db.migrate import upgrade
from musicstudio.services import accounts
from musicstudio.services.context import ServiceContext, build_context
from tests.helpers import api_client


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    base = Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'musicstudio.db'}",
        storage_url=f"file://{data_dir / 'media'}",
        public_url=None,
        playback_ttl_seconds=900,
        workers=0,
        lease_seconds=30,
        max_attempts=3,
        poll_seconds=0.05,
        soundfont=None,
        policy_file=None,
        secret_key=b"test-secret-key",
        # Limits out of the way; the tests of limits set their own.
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
        max_active_jobs_per_org=1_000_000,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test copies the file (alembic per test would dominate the suite)."""
    path = tmp_path_factory.mktemp("template") / "musicstudio.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_template: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(migrated_template, data_dir / "musicstudio.db")
    return make_settings(data_dir)


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[ServiceContext]:
    context = build_context(settings)
    yield context
    await context.close()


@dataclass(frozen=True)
class Caller:
    org_id: str
    user_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def path(self, rest: str = "") -> str:
        return f"/v1/music/{self.org_id}{rest}"


@pytest.fixture
async def alice(ctx: ServiceContext) -> Caller:
    issued = await accounts.bootstrap(ctx, "Org A", "alice@example.com")
    return Caller(issued.organization_id, issued.user_id, issued.api_key)


@pytest.fixture
async def bob(ctx: ServiceContext, alice: Caller) -> Caller:
    """Another user of Alice's organization."""
    issued = await accounts.create_user(ctx, alice.org_id, "bob@example.com")
    return Caller(issued.organization_id, issued.user_id, issued.api_key)


@pytest.fixture
async def carol(ctx: ServiceContext) -> Caller:
    """A user of another organization."""
    issued = await accounts.bootstrap(ctx, "Org B", "carol@example.com")
    return Caller(issued.organization_id, issued.user_id, issued.api_key)


@pytest.fixture
async def client(ctx: ServiceContext) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(ctx) as http:
        yield http
