"""Connections: one async engine per process, read and write transactions.

SQLite (embedded default) runs in WAL mode with a busy timeout. Its write
transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the lock
instead of failing when a read inside the transaction turns into a write.
PostgreSQL connections (asyncpg) get the planner settings in ``POSTGRES_SETTINGS`` and
connect and command timeouts. Losing the server (down, restarting, starting up, a connection
dropped mid-statement) surfaces from every entry point as ``DatabaseUnavailable``, which the
API answers with 503; SQLAlchemy's pre-ping and asyncpg's pool replace dead connections, so
the first request after the server is back succeeds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Executable, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from musicstudio.db.plain import ASYNCPG, SQLITE, PlainStatement, open_pool

_WRITE_OPTION = "musicstudio_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PLAIN_POOL_SIZE = 4  # plain PostgreSQL connections per process, for hot single statements
# A server that does not answer must cost a request seconds, not the driver's 60 s default:
# callers (and their HTTP clients) give up long before that.
CONNECT_TIMEOUT_SECONDS = 5.0
# A backstop for a connection that went half-open mid-statement (no RST ever arrives); far
# above any statement the service runs.
COMMAND_TIMEOUT_SECONDS = 30.0
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


class DatabaseUnavailable(Exception):
    """The database server cannot be reached (a connection-level failure, not a bad query)."""


# Connection-level failures of the PostgreSQL driver: refused or reset sockets, timeouts, a
# closed connection, and the server shutting down ("terminating connection due to
# administrator command"), crashing, starting up, or full.
_OUTAGES = (
    OSError,
    TimeoutError,
    sa_exc.TimeoutError,  # SQLAlchemy's pool had no connection to give in time
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def _is_outage(exc: BaseException) -> bool:
    """True for a lost or unreachable server, false for a failing statement."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        # SQLAlchemy wraps its adapter's error, which wraps asyncpg's (``raise … from``).
        driver_error = exc.orig.__cause__ if exc.orig is not None else None
        return isinstance(exc.orig, _OUTAGES) or isinstance(driver_error, _OUTAGES)
    return isinstance(exc, _OUTAGES)


@asynccontextmanager
async def _outages_as_unavailable() -> AsyncIterator[None]:
    """Re-raise a connection-level failure as ``DatabaseUnavailable`` (the API's 503)."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if not _is_outage(exc):
            raise
        raise DatabaseUnavailable(f"the database is not reachable: {exc!r}") from exc


def _open_sqlite_reader(url: str) -> sqlite3.Connection:
    """A read-only plain sqlite3 connection; rows by column name, each read autocommitted."""
    path = make_url(url).database or ""
    conn = sqlite3.connect(
        path,
        timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,  # made and used by one thread; closed by ``dispose``
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only=ON")
    return conn


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
                kwargs["connect_args"] = {
                    "server_settings": dict(POSTGRES_SETTINGS),
                    "timeout": CONNECT_TIMEOUT_SECONDS,
                    "command_timeout": COMMAND_TIMEOUT_SECONDS,
                }
        self.engine = create_async_engine(url, **kwargs)
        self._plain_pool: asyncpg.Pool | None = None
        self._plain_pool_lock = asyncio.Lock()
        self._plain_statements: dict[Executable, PlainStatement] = {}
        # Plain sqlite3 readers for ``fetch_all``: one per thread that reads, closed on dispose.
        self._sqlite_local = threading.local()
        self._sqlite_readers: list[sqlite3.Connection] = []
        self._sqlite_readers_lock = threading.Lock()
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine.sync_engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (consistent snapshot; rolled back at the end)."""
        async with _outages_as_unavailable(), self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on error."""
        async with _outages_as_unavailable(), self.engine.connect() as conn:
            await conn.execution_options(**{_WRITE_OPTION: True})
            async with conn.begin():
                yield conn

    async def fetch_all(
        self,
        statement: Executable,
        params: Mapping[str, Any] | None = None,
        *,
        bounded: bool = False,
    ) -> list[Any]:
        """The rows of one read-only hot statement, straight from the plain driver.

        For the reads every request makes (the key lookup, the list page): ``statement`` is a
        long-lived Core expression with bound parameters, compiled once. Rows are indexable by
        column name and hold the driver's values: on SQLite datetimes are the stored text.
        On SQLite a ``bounded`` statement (an index lookup touching a few dozen rows) runs
        inline: that costs less than a thread hand-off, which under load also queues on the
        GIL; anything else runs in one hop to a thread so a slow scan can't stall the loop.
        On PostgreSQL it is one round trip on the plain pool.
        """
        plain = self._plain_statement(statement)
        if self.is_sqlite:
            if bounded:
                return self._sqlite_fetch_all(plain, params or {})
            return await asyncio.to_thread(self._sqlite_fetch_all, plain, params or {})
        async with self._plain_connection() as conn:
            return list(await conn.fetch(plain.sql, *plain.args(params or {})))

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
        plain = self._plain_statement(statement)
        async with self._plain_connection() as conn:
            record = await conn.fetchrow(plain.sql, *plain.args(params))
        return None if record is None else dict(record)

    def _plain_statement(self, statement: Executable) -> PlainStatement:
        plain = self._plain_statements.get(statement)
        if plain is None:
            dialect = SQLITE if self.is_sqlite else ASYNCPG
            plain = self._plain_statements[statement] = PlainStatement(statement, dialect)
        return plain

    @asynccontextmanager
    async def _plain_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A plain PostgreSQL connection; losing the server raises ``DatabaseUnavailable``."""
        async with _outages_as_unavailable():
            if self._plain_pool is None:
                async with self._plain_pool_lock:
                    if self._plain_pool is None:
                        self._plain_pool = await open_pool(
                            driver_dsn(self.url),
                            dict(POSTGRES_SETTINGS),
                            max_size=PLAIN_POOL_SIZE,
                            connect_timeout=CONNECT_TIMEOUT_SECONDS,
                            command_timeout=COMMAND_TIMEOUT_SECONDS,
                        )
            async with self._plain_pool.acquire() as conn:
                yield conn

    def _sqlite_fetch_all(self, plain: PlainStatement, params: Mapping[str, Any]) -> list[Any]:
        conn = getattr(self._sqlite_local, "conn", None)
        if conn is None:
            conn = self._sqlite_local.conn = _open_sqlite_reader(self.url)
            with self._sqlite_readers_lock:
                self._sqlite_readers.append(conn)
        return conn.execute(plain.sql, plain.args(params)).fetchall()

    async def dispose(self) -> None:
        if self._plain_pool is not None:
            await self._plain_pool.close()
            self._plain_pool = None
        await self.engine.dispose()
        with self._sqlite_readers_lock:
            readers, self._sqlite_readers = self._sqlite_readers, []
        for reader in readers:
            reader.close()
        self._sqlite_local = threading.local()
