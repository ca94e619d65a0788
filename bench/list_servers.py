"""The two reference servers ``bench/list_jobs.py`` measures beside the real endpoint.

* ``bare``: a raw ASGI callable, no framework: it answers ``GET /v1/music/{org}/generations``
  with page bytes saved from the real server (pre-serialized), picked by the ``offset`` in the
  query string. The server's ceiling: uvicorn's HTTP handling and nothing else.
* ``lean``: a plain Starlette app with that one route, written for the benchmark: it runs the
  same page SQL as the app through the plain driver (stdlib ``sqlite3`` or an asyncpg pool),
  builds the same JSON shape and serializes it with orjson. No authentication, no scoping
  beyond the path's org and the user given on the command line, no validation beyond
  ``int()``.

Both run under ``uvicorn.run(app, host=..., port=..., log_level="info")``, the call
``musicstudio serve`` makes (access log on; uvloop and httptools when installed)::

    python bench/list_servers.py bare --port 8101 --pages DIR
    python bench/list_servers.py lean --port 8102 --database-url URL --user-id usr_...
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# --------------------------------------------------------------------------- the page SQL

COLUMNS = (
    "id, status, progress, engine, mode, created_at, result_track_id, error_message, refusal_reason"
)
# The app's list query (store.jobs.list_jobs_statement without a status filter), written out
# for each driver's placeholder style; `app_sql_matches` checks it against the app's own.
SQLITE_LIST_SQL = (
    f"SELECT {COLUMNS} FROM generation_jobs WHERE org_id = ? AND user_id = ?"
    " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
)
POSTGRES_LIST_SQL = (
    f"SELECT {COLUMNS} FROM generation_jobs WHERE org_id = $1 AND user_id = $2"
    " ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
)
# The app runs a page inline on SQLite while offset + limit stays within this many index
# entries, in a thread beyond (services.generations.INLINE_SCAN_ROWS); the lean route too.
INLINE_SCAN_ROWS = 1_000


def _normalized(sql: str) -> str:
    sql = sql.replace("generation_jobs.", "")
    sql = re.sub(r"::[A-Z]+", "", sql)  # asyncpg casts of LIMIT/OFFSET parameters
    sql = re.sub(r"\$\d+", "?", sql)
    sql = re.sub(r"__\[POSTCOMPILE_\w+\]", "?", sql)
    return " ".join(sql.split())


def app_sql(dialect_name: str) -> str:
    """The app's own list SQL for ``dialect_name``, compiled from its Core statement."""
    from musicstudio.store import jobs

    statement = getattr(jobs, "LIST_JOBS", None)  # bound parameters, built once
    if statement is None and hasattr(jobs, "list_jobs_statement"):  # the earlier builder
        statement = jobs.list_jobs_statement("o", "u", status=None, limit=50, offset=0)
    if statement is None:
        return "(the app's list statement was not found)"
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

        return str(statement.compile(dialect=sqlite_dialect()))
    from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

    return str(statement.compile(dialect=asyncpg_dialect()))


def app_sql_matches(dialect_name: str) -> tuple[bool, str, str]:
    """Whether the lean SQL is the app's (names qualified, casts and placeholders aside)."""
    ours = SQLITE_LIST_SQL if dialect_name == "sqlite" else POSTGRES_LIST_SQL
    theirs = app_sql(dialect_name)
    return _normalized(ours) == _normalized(theirs), ours, theirs


# --------------------------------------------------------------------------- bare


class BareApp:
    """Raw ASGI: the saved page for the request's ``offset`` (the first page otherwise)."""

    def __init__(self, pages: dict[int, bytes]) -> None:
        self.pages = pages
        self.first = pages[min(pages)]
        # query string -> (headers, body); filled on first sight of each query string.
        self.cache: dict[bytes, tuple[list[tuple[bytes, bytes]], bytes]] = {}
        self.health = self._entry(b'{"status":"ok"}')

    @staticmethod
    def _entry(body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        return headers, body

    def _lookup(self, query: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
        entry = self.cache.get(query)
        if entry is None:
            values = parse_qs(query.decode("latin-1")).get("offset", ["0"])
            try:
                offset = int(values[0])
            except ValueError:
                offset = -1
            entry = self.cache[query] = self._entry(self.pages.get(offset, self.first))
        return entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            headers, body = self.health
        else:
            headers, body = self._lookup(scope["query_string"])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def load_pages(pages_dir: Path) -> dict[int, bytes]:
    """``page-<offset>.json`` files as {offset: bytes}."""
    pages = {int(p.stem.split("-")[1]): p.read_bytes() for p in pages_dir.glob("page-*.json")}
    if not pages:
        raise SystemExit(f"no page-*.json in {pages_dir}")
    return pages


# --------------------------------------------------------------------------- lean


def _sqlite_job(row: tuple[Any, ...]) -> dict[str, Any]:
    created = row[5]  # 'YYYY-MM-DD HH:MM:SS.ffffff', naive UTC as SQLAlchemy stores it
    return {
        "id": row[0],
        "status": row[1],
        "progress": row[2],
        "engine": row[3],
        "mode": row[4],
        "created_at": created[:10] + "T" + created[11:19] + "Z",
        "result_track_id": row[6],
        "error_message": row[7],
        "refusal_reason": row[8],
        "playback_url": None,
        "track": None,
    }


def _postgres_job(row: Any) -> dict[str, Any]:
    # asyncpg returns timestamptz as an aware UTC datetime: '2026-…T10:30:00.123456+00:00'.
    return {
        "id": row[0],
        "status": row[1],
        "progress": row[2],
        "engine": row[3],
        "mode": row[4],
        "created_at": row[5].isoformat()[:19] + "Z",
        "result_track_id": row[6],
        "error_message": row[7],
        "refusal_reason": row[8],
        "playback_url": None,
        "track": None,
    }


class SqlitePages:
    """Pages on stdlib ``sqlite3``: inline on the loop when bounded, else one thread hop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self.local.conn = conn
        return conn

    def _fetch(self, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._conn().execute(SQLITE_LIST_SQL, params).fetchall()

    async def page(self, org_id: str, user_id: str, limit: int, offset: int) -> list[Any]:
        params = (org_id, user_id, limit, offset)
        if offset + limit <= INLINE_SCAN_ROWS:
            rows = self._fetch(params)
        else:
            rows = await asyncio.to_thread(self._fetch, params)
        return [_sqlite_job(row) for row in rows]

    async def open(self) -> None:
        self._conn()

    async def close(self) -> None:
        return None


class AiosqlitePages:
    """Pages on aiosqlite (one connection, its own thread): the measured alternative."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: Any = None

    async def open(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path, timeout=30)

    async def page(self, org_id: str, user_id: str, limit: int, offset: int) -> list[Any]:
        async with self.conn.execute(SQLITE_LIST_SQL, (org_id, user_id, limit, offset)) as cur:
            rows = await cur.fetchall()
        return [_sqlite_job(row) for row in rows]

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


class PostgresPages:
    """Pages on an asyncpg pool with the app's per-connection planner settings."""

    def __init__(self, dsn: str, pool_size: int) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.pool: Any = None

    async def open(self) -> None:
        import asyncpg

        from musicstudio.db.database import POSTGRES_SETTINGS

        settings = dict(POSTGRES_SETTINGS)
        settings["application_name"] = "musicstudio-bench-lean"
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size, server_settings=settings
        )

    async def page(self, org_id: str, user_id: str, limit: int, offset: int) -> list[Any]:
        rows = await self.pool.fetch(POSTGRES_LIST_SQL, org_id, user_id, limit, offset)
        return [_postgres_job(row) for row in rows]

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


def lean_pages(database_url: str, sqlite_driver: str, pool_size: int) -> Any:
    """The page source for a ``MUSICSTUDIO_DATABASE_URL``-style URL."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        return SqlitePages(path) if sqlite_driver == "sqlite3" else AiosqlitePages(path)
    if database_url.startswith("postgresql"):
        return PostgresPages(
            re.sub(r"^postgresql\+\w+://", "postgresql://", database_url), pool_size
        )
    raise SystemExit(f"unsupported database URL {database_url!r}")


def _page_body(jobs: list[Any], limit: int, offset: int) -> bytes:
    """The page as the real endpoint serializes it (a function of its own for profiles)."""
    return orjson.dumps({"jobs": jobs, "limit": limit, "offset": offset})


def lean_app(source: Any, user_id: str) -> Any:
    """The Starlette app: one list route and a health route."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def list_generations(request: Request) -> Response:
        query = request.query_params
        limit = int(query.get("limit", "50"))
        offset = int(query.get("offset", "0"))
        jobs = await source.page(request.path_params["org"], user_id, limit, offset)
        return Response(_page_body(jobs, limit, offset), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await source.open()
        yield
        await source.close()

    return Starlette(
        routes=[
            Route("/v1/music/{org}/generations", list_generations),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


# --------------------------------------------------------------------------- main


def serve(app: Any, port: int) -> None:
    """Exactly the uvicorn call of ``musicstudio serve``."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=("bare", "lean"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pages", type=Path, help="bare: dir of page-<offset>.json files")
    parser.add_argument("--database-url", help="lean: sqlite+aiosqlite:///… or postgresql+…")
    parser.add_argument("--user-id", help="lean: whose jobs the route lists")
    parser.add_argument(
        "--sqlite-driver", choices=("sqlite3", "aiosqlite"), default="sqlite3", help="lean"
    )
    parser.add_argument("--pool-size", type=int, default=8, help="lean: asyncpg pool size")
    args = parser.parse_args(argv)
    if args.kind == "bare":
        if args.pages is None:
            parser.error("bare needs --pages")
        serve(BareApp(load_pages(args.pages)), args.port)
    else:
        if not args.database_url or not args.user_id:
            parser.error("lean needs --database-url and --user-id")
        source = lean_pages(args.database_url, args.sqlite_driver, args.pool_size)
        serve(lean_app(source, args.user_id), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
