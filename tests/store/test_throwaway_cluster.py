"""Without a configured or running server, the tests start their own PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from tests.postgres import _server_binary, start_cluster


def test_a_throwaway_cluster_starts_and_answers() -> None:
    if _server_binary("initdb") is None and os.environ.get("CI") != "true":
        pytest.skip("initdb is not installed")
    url = start_cluster()  # stopped and removed at exit

    async def version() -> str:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    assert url != "postgresql://postgres@127.0.0.1:5432/postgres"
    assert asyncio.run(version())[:2].isdigit()
