"""The Alembic history produces exactly the declared schema, and downgrades cleanly, on
SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from musicstudio.db.migrate import downgrade, upgrade
from musicstudio.db.tables import metadata
from tests.postgres import throwaway_database


def test_upgrade_matches_metadata_and_downgrade_empties(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    upgrade(f"sqlite+aiosqlite:///{path}")  # idempotent
    downgrade(f"sqlite+aiosqlite:///{path}", "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


async def test_upgrade_works_from_inside_an_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    assert "generation_jobs" in inspect(engine).get_table_names()
    engine.dispose()


async def test_postgres_upgrade_matches_metadata_and_downgrade_empties() -> None:
    with throwaway_database() as url:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
                )
            assert diff == []
            upgrade(url)  # idempotent
            downgrade(url, "base")
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            assert names == {"alembic_version"}
        finally:
            await engine.dispose()
