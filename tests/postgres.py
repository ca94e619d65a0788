"""A throwaway PostgreSQL database for the tests that run on both backends.

The server is, in this order: ``MUSICSTUDIO_TEST_POSTGRES_URL`` (an admin connection URL);
the local one on 127.0.0.1:5432 as ``postgres`` (trust auth) if it answers; else a throwaway
cluster this process starts with ``initdb`` and ``pg_ctl`` (from PATH or Debian's
``/usr/lib/postgresql/*/bin``) in a temp dir on a free loopback port, stopped at exit. A
fresh database with a random name is created and migrated once per test session and dropped
at the end; tests empty its tables before they start. Without any server the PostgreSQL half
of the suite is skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from musicstudio.db.database import driver_dsn
from musicstudio.db.migrate import upgrade

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Every table the app owns, children first (TRUNCATE ... CASCADE would do too; explicit is
# clearer about what a test starts from).
TABLES = (
    "focus_sessions",
    "share_links",
    "collection_tracks",
    "library_entries",
    "collections",
    "tracks",
    "generation_jobs",
    "api_keys",
    "users",
    "organizations",
)


class NoPostgres(Exception):
    """No server configured, none running locally, and no cluster could be started."""


@functools.cache
def admin_url() -> str:
    """The admin URL of the server the tests use (see the module's docstring)."""
    configured = os.environ.get("MUSICSTUDIO_TEST_POSTGRES_URL")
    if configured:
        return configured
    try:
        _run(lambda: _admin("SELECT 1", DEFAULT_ADMIN_URL))
        return DEFAULT_ADMIN_URL
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pass
    return start_cluster()


def _server_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def start_cluster() -> str:
    """Start a throwaway cluster (trust auth, loopback only); its admin URL. Stopped at exit."""
    initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise NoPostgres("no PostgreSQL server and no initdb/pg_ctl to start one")
    root = Path(tempfile.mkdtemp(prefix="musicstudio-pg-"))
    data = root / "data"
    # PostgreSQL refuses to run as root: run it as the ``postgres`` system user then.
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NoPostgres(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")

    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start")

    def stop() -> None:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


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


async def _admin(sql: str, url: str | None = None) -> None:
    conn = await asyncpg.connect(driver_dsn(url or admin_url()), timeout=5)
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
    except (NoPostgres, OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"no PostgreSQL for the tests: {exc}"
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
