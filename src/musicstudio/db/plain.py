"""Hot statements on the plain drivers (asyncpg, sqlite3), compiled once from Core expressions.

A write through SQLAlchemy's async layer costs four round trips (pre-ping, BEGIN, the
statement, COMMIT) plus the greenlet bridge: about 2.2 ms for a queue claim that PostgreSQL
itself serves in 0.1 ms. A single statement needs no explicit transaction (it is one), so the
hot statements (the queue's writes, the key lookup, the list page) are long-lived Core
expressions with bound parameters, compiled once per dialect, and run on plain connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Dialect, Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.sql.compiler import Compiled

ASYNCPG = asyncpg_dialect()  # type: ignore[no-untyped-call]
SQLITE = sqlite_dialect()  # type: ignore[no-untyped-call]


class PlainStatement:
    """A Core statement as a driver's SQL (``$n`` or ``?`` placeholders) and argument order.

    Arguments go to the driver as given, without SQLAlchemy's type processing: plain values
    only (str, int, float, bool, None; aware datetimes and JSON values for asyncpg).
    """

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        self._compiled = compiled
        self._names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """Positional arguments: the given values, and the literals the expression holds."""
        merged = self._compiled.construct_params(dict(params)) or {}
        return [merged[name] for name in self._names]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns in and out as Python values, as SQLAlchemy's JSON type gives them.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=_json_dumps, decoder=orjson.loads
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset on release: plain statements run alone (autocommit) and change no session
    state, so the pool's default ``RESET ALL`` round trip after every use buys nothing."""


async def open_pool(
    dsn: str,
    server_settings: Mapping[str, str],
    *,
    max_size: int,
    connect_timeout: float,
    command_timeout: float,
) -> asyncpg.Pool:
    """A pool of plain connections with the service's per-connection settings.

    A connection the server dropped (a restart) is noticed as closed and replaced by the pool
    on the next acquire, so no pre-ping is needed here.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings=dict(server_settings),
        init=_init_connection,
        reset=_keep_session,
        timeout=connect_timeout,
        command_timeout=command_timeout,
    )
