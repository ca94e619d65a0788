"""A throwaway PostgreSQL database for the tests that run on both backends.

The server is ``MUSICSTUDIO_TEST_POSTGRES_URL`` (an admin connection URL) or, by default,
the local one on 127.0.0.1:5432 as ``postgres`` (trust auth). A fresh database with a
random name is created and migrated once per test session and dropped at the end; tests
empty its tables before they start. Without a reachable server the PostgreSQL half of the
suite is skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from musicstudio.db.database import driver_dsn
from musicstudio.db.migrate import upgrade

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Every table the app owns, children first (TRUNCATE ... CASCADE would do too; explicit is
# clearer about what a test starts from).
TABLES = ("tracks", "generation_jobs", "api_keys", "users", "organizations")


def admin_url() -> str:
    return os.environ.get("MUSICSTUDIO_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def _with_database(url: str, name: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


def _run(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion, in a thread of its own if a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(make())).result()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(driver_dsn(admin_url()), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Create and migrate a fresh database; yield its SQLAlchemy URL; drop it afterwards."""
    name = f"musicstudio_test_{secrets.token_hex(4)}"
    try:
        _run(lambda: _admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at {admin_url()} is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    url = _with_database(admin_url(), name)
    try:
        upgrade(url)
        yield url
    finally:
        _run(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def empty_tables(url: str) -> None:
    """Remove every row the previous test left."""
    conn = await asyncpg.connect(driver_dsn(url), timeout=5)
    try:
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    finally:
        await conn.close()
