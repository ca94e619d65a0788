"""Per-connection settings of the database layer."""

from __future__ import annotations

from sqlalchemy import text

from musicstudio.services.context import ServiceContext


async def test_connections_carry_their_backend_settings(ctx: ServiceContext) -> None:
    if ctx.db.is_sqlite:
        async with ctx.db.read() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        return
    async with ctx.db.read() as conn:
        assert (await conn.execute(text("SHOW random_page_cost"))).scalar() == "1.1"
        assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar() == "force_custom_plan"
    rows = await ctx.db.fetch_all(text("SHOW plan_cache_mode"))  # the hot-read path too
    assert list(rows[0].values()) == ["force_custom_plan"]
