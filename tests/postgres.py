"""A throwaway PostgreSQL database for the tests that run on both backends.

The server is, in this order: ``MUSICSTUDIO_TEST_POSTGRES_URL`` (an admin connection URL);
the local one on 127.0.0.1:5432 as ``postgres`` (trust auth) if it answers; else a throwaway
cluster this process starts with ``initdb`` and ``pg_ctl`` (from PATH or Debian's
``/usr/lib/postgresql/*/bin``) in a temp dir on a free loopback port, stopped at exit. A
fresh database with a random name is created and migrated once per test session and dropped
at the end; tests empty its tables before they start. Without any server the PostgreSQL half
of the suite is skipped, except under ``CI=true``, where that is a failure.

A test that stops and starts the server (an outage) takes a cluster of its own instead:
``throwaway_cluster`` yields a ``ThrowawayCluster``.
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
    cluster = ThrowawayCluster()
    atexit.register(cluster.remove)
    cluster.start()
    return cluster.admin_url


class ThrowawayCluster:
    """A cluster of its own in a temp dir on a fixed free loopback port (``initdb`` on
    creation): it can be stopped and started again on the same port, to test outages.
    Call ``remove`` when done."""

    def __init__(self) -> None:
        initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise NoPostgres("no PostgreSQL server and no initdb/pg_ctl to start one")
        self._pg_ctl = pg_ctl
        self._pg_isready = _server_binary("pg_isready")
        self.root = Path(tempfile.mkdtemp(prefix="musicstudio-pg-"))
        self.data = self.root / "data"
        # PostgreSQL refuses to run as root: run it as the ``postgres`` system user then.
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(
            initdb,
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_user, *command], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise NoPostgres(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")

    def start(self, *, wait: bool = True) -> None:
        """Start the server; with ``wait``, return once it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        log = str(self.root / "log")
        waiting = ["-w", "-t", "60"] if wait else ["-W"]
        self._run(self._pg_ctl, "-D", str(self.data), "-o", options, "-l", log, *waiting, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: like a crash)."""
        self._run(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def is_ready(self) -> bool:
        """True when the server accepts connections (``pg_isready``)."""
        if self._pg_isready is None:
            raise NoPostgres("no pg_isready")
        command = [self._pg_isready, "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        subprocess.run(
            [*self._as_user, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A started cluster of the caller's own, removed afterwards. Without ``initdb``/``pg_ctl``
    the test is skipped, except under ``CI=true``, where that is a failure."""
    try:
        cluster = ThrowawayCluster()
    except NoPostgres as exc:
        message = f"no PostgreSQL cluster for the test: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


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
