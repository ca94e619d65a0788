"""Waking idle workers when work arrives: PostgreSQL LISTEN/NOTIFY, with polling as fallback.

``announce_work`` runs inside the transaction that queues a job; PostgreSQL delivers the
notification when (and only if) it commits. ``WorkSignal`` keeps one listening connection
per worker process and sets an event on every notification; the worker waits on that event
with its poll interval as a timeout, so a lost connection or a missed notification only
costs a poll interval. A lost connection (the database restarting) is re-opened with a
short back-off. On SQLite both are no-ops and workers poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.database import driver_dsn

log = logging.getLogger("musicstudio.wakeup")

JOBS_CHANNEL = "musicstudio_jobs"
# Named so operators (and the outage test) can tell the listening connections apart.
APPLICATION_NAME = "musicstudio-wakeup"
# Capped low: each try is one cheap connect, and workers of a restarted database should
# be listening again within a couple of seconds of it.
_RECONNECT_SECONDS = (0.25, 0.5, 1.0, 2.0)
_CONNECT_SECONDS = 5.0
_CHECK_SECONDS = 30.0


async def announce_work(conn: AsyncConnection) -> None:
    """Tell listening workers a job is ready (delivered at commit; no-op off PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": JOBS_CHANNEL})


class WorkSignal:
    """An event set whenever a job may be ready; keeps its own listening connection."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self.event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while a LISTEN is active (for tests/metrics)

    @property
    def enabled(self) -> bool:
        return make_url(self._url).get_backend_name() == "postgresql"

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="work-signal")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait(self, within: float) -> None:
        """Return when work was announced or after ``within`` seconds, whichever is first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.event.wait()
        self.event.clear()

    def _notified(self, *_args: object) -> None:
        self.event.set()

    async def _listen_forever(self) -> None:
        attempt = 0
        interrupted = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    driver_dsn(self._url),
                    timeout=_CONNECT_SECONDS,
                    server_settings={"application_name": APPLICATION_NAME},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(JOBS_CHANNEL, self._notified)
                self.listening.set()
                self.event.set()  # anything queued while we were not listening
                if interrupted:
                    log.info("listening for work notifications again")
                attempt, interrupted = 0, False
                while not lost.is_set():
                    # A half-open connection never reports its loss: check it now and then.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_CHECK_SECONDS):
                            await lost.wait()
                    if not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=_CONNECT_SECONDS)
                log.warning("work notifications lost; polling until reconnected")
                interrupted = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarting, a network blip
                if not interrupted:  # once per outage, not once per try
                    log.warning("work notifications unavailable (%s); polling meanwhile", exc)
                interrupted = True
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=_CONNECT_SECONDS)
            await asyncio.sleep(_RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)])
            attempt += 1
