"""Hot statements on the plain asyncpg driver, compiled once from their Core expressions.

A write through SQLAlchemy's async layer costs four round trips (pre-ping, BEGIN, the
statement, COMMIT) plus the greenlet bridge: about 2.2 ms for a queue claim that PostgreSQL
itself serves in 0.1 ms. A single statement needs no explicit transaction (it is one), so the
queue's hot statements are compiled once for asyncpg from the same Core expressions the SQLite
path executes, and run in one round trip on a small pool of plain connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.compiler import Compiled

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


class PlainStatement:
    """A Core statement as asyncpg SQL (``$n`` placeholders) and its parameter order."""

    def __init__(self, statement: Executable) -> None:
        compiled: Compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
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


async def open_pool(dsn: str, server_settings: Mapping[str, str], *, max_size: int) -> asyncpg.Pool:
    """A pool of plain connections with the service's per-connection settings."""
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings=dict(server_settings),
        init=_init_connection,
    )
