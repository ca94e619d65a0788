"""The Alembic history produces exactly the declared schema, and downgrades cleanly, on
SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from musicstudio.db.migrate import downgrade, upgrade
from musicstudio.db.tables import library_entries, metadata, organizations, tracks, users
from tests.helpers import track_values
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


async def test_tracks_made_before_libraries_enter_their_creators_library() -> None:
    with throwaway_database() as url:
        downgrade(url, "0002")
        engine = create_async_engine(url)
        now = datetime(2026, 6, 1, tzinfo=UTC)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(organizations).values(id="org_a", name="A", created_at=now)
                )
                for user in ("usr_a", "usr_b"):
                    await conn.execute(
                        insert(users).values(id=user, org_id="org_a", email=user, created_at=now)
                    )
                for track_id, user, deleted in (("t1", "usr_a", None), ("t2", "usr_b", now)):
                    await conn.execute(
                        insert(tracks).values(**_track(track_id, user, now, deleted))
                    )
            upgrade(url)
            async with engine.connect() as conn:
                rows = (await conn.execute(select(library_entries))).mappings().all()
        finally:
            await engine.dispose()
    assert [(r["user_id"], r["track_id"], r["source"]) for r in rows] == [
        ("usr_a", "t1", "generated")
    ], "the deleted track stays out"
    assert rows[0]["id"].startswith("mlib_") and rows[0]["created_at"] == now


def _track(track_id: str, user_id: str, now: datetime, deleted: datetime | None) -> dict[str, Any]:
    return track_values(track_id, "org_a", user_id, now, deleted_at=deleted)
