"""Connections: one async engine per process, read and write transactions.

SQLite (embedded default) runs in WAL mode with a busy timeout. Its write
transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the lock
instead of failing when a read inside the transaction turns into a write.
PostgreSQL connections (asyncpg) get the planner settings in ``POSTGRES_SETTINGS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Executable, RowMapping, create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from musicstudio.db.plain import PlainStatement, open_pool

_WRITE_OPTION = "musicstudio_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PLAIN_POOL_SIZE = 4  # plain PostgreSQL connections per process, for hot single statements
# Set on every PostgreSQL connection (DESIGN.md, list query): the index-ordered page scan
# is what we want, and generic cached plans were 40-100x slower on deep pages.
POSTGRES_SETTINGS = (
    ("random_page_cost", "1.1"),
    ("plan_cache_mode", "force_custom_plan"),
    ("application_name", "musicstudio"),
)


def driver_dsn(database_url: str) -> str:
    """A ``postgresql+asyncpg://`` URL as plain asyncpg takes it (for LISTEN and admin work)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _install_sqlite_hooks(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The process's engine and its two kinds of transaction."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = url.split("+", 1)[0].split(":", 1)[0]
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            kwargs["pool_size"] = 4
            kwargs["max_overflow"] = 4
        else:
            kwargs["pool_pre_ping"] = True
            if self.dialect == "postgresql":
                kwargs["connect_args"] = {"server_settings": dict(POSTGRES_SETTINGS)}
        self.engine = create_async_engine(url, **kwargs)
        self._sync_reader: Engine | None = None
        self._plain_pool: asyncpg.Pool | None = None
        self._plain_pool_lock = asyncio.Lock()
        self._plain_statements: dict[Executable, PlainStatement] = {}
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine.sync_engine)
            # aiosqlite hands every driver call to its thread and back (~9 hand-offs per
            # statement, ~1 ms); hot reads instead run whole on the plain driver in one hop.
            self._sync_reader = create_engine(
                url.replace("+aiosqlite", "+pysqlite", 1),
                connect_args={
                    "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                    "check_same_thread": False,
                },
                pool_size=4,
                max_overflow=4,
            )
            _install_sqlite_hooks(self._sync_reader)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (consistent snapshot; rolled back at the end)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on error."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    async def fetch_all(self, statement: Executable, *, bounded: bool = False) -> list[RowMapping]:
        """The rows of one read-only statement, for hot paths.

        On SQLite a ``bounded`` statement (an index lookup touching a few dozen rows) runs
        inline: that costs less than the thread hand-off, which under load also queues on the
        GIL. Anything else runs in one hop to a thread so a slow scan can't stall the loop.
        """
        if self._sync_reader is not None:
            if bounded:
                return self._fetch_all_sync(statement)
            return await asyncio.to_thread(self._fetch_all_sync, statement)
        async with self.engine.connect() as conn:
            result = await conn.execute(statement)
            return list(result.mappings())

    async def execute_one(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Run one statement as its own write transaction; its first returned row, if any.

        For hot writes (the queue's claim, heartbeat and completion), whose statements are
        long-lived objects with bound parameters. On PostgreSQL this is one round trip on the
        plain driver, the statement compiled once; elsewhere a ``write()`` transaction.
        """
        if self.dialect != "postgresql":
            async with self.write() as conn:
                row = (await conn.execute(statement, dict(params))).first()
            return None if row is None else dict(row._mapping)
        plain = self._plain_statements.get(statement)
        if plain is None:
            plain = self._plain_statements[statement] = PlainStatement(statement)
        pool = self._plain_pool or await self._open_plain_pool()
        async with pool.acquire() as conn:
            record = await conn.fetchrow(plain.sql, *plain.args(params))
        return None if record is None else dict(record)

    async def _open_plain_pool(self) -> asyncpg.Pool:
        async with self._plain_pool_lock:
            if self._plain_pool is None:
                self._plain_pool = await open_pool(
                    driver_dsn(self.url), dict(POSTGRES_SETTINGS), max_size=PLAIN_POOL_SIZE
                )
            return self._plain_pool

    def _fetch_all_sync(self, statement: Executable) -> list[RowMapping]:
        assert self._sync_reader is not None
        with self._sync_reader.connect() as conn:
            return list(conn.execute(statement).mappings())

    async def dispose(self) -> None:
        if self._plain_pool is not None:
            await self._plain_pool.close()
            self._plain_pool = None
        await self.engine.dispose()
        if self._sync_reader is not None:
            self._sync_reader.dispose()
