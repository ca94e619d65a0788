"""The store suite runs every test twice: on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from musicstudio.config import Settings
from tests.conftest import make_settings
from tests.postgres import empty_tables, throwaway_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path
) -> Settings:
    """Overrides the root ``settings``: same app settings, each backend in turn."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        shutil.copy(migrated_template, data_dir / "musicstudio.db")
        return make_settings(data_dir)
    url: str = request.getfixturevalue("postgres_url")
    await empty_tables(url)
    return make_settings(data_dir, database_url=url)
