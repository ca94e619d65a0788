"""Bulk-fill ``generation_jobs`` for one user with app-valid rows, on SQLite or PostgreSQL.

Used by ``bench/list_jobs.py``: ULID ids whose time is ``created_at``, mixed statuses, request
JSON and fingerprints made by the app's own ``NewGeneration``. One row generator serves both
backends and streams batches (10M rows never sit in memory); only the stored form of times
and booleans differs: on SQLite the text SQLAlchemy's SQLite dialect writes and 0/1 (stdlib
``sqlite3``, ``executemany``), on PostgreSQL aware UTC datetimes and booleans (asyncpg binary
``COPY``).
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MAX_ATTEMPTS = 3  # the app's default MUSICSTUDIO_MAX_ATTEMPTS
FILL_BATCH = 50_000

# --------------------------------------------------------------------------- ids and times

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as two Crockford characters: a ULID is 130 bit positions (the top two
# always zero) = 13 such pairs, so encoding is 13 table lookups (base64.b32encode is pure
# Python in 3.11 and several times slower per id).
_PAIRS = [_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024)]
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)


def ulid_text(ms: int, randomness: int) -> str:
    """The 26-character lowercase ULID of a 48-bit millisecond time and 80 random bits."""
    n = (ms << 80) | randomness
    t = _PAIRS
    return (
        t[n >> 120]
        + t[(n >> 110) & 1023]
        + t[(n >> 100) & 1023]
        + t[(n >> 90) & 1023]
        + t[(n >> 80) & 1023]
        + t[(n >> 70) & 1023]
        + t[(n >> 60) & 1023]
        + t[(n >> 50) & 1023]
        + t[(n >> 40) & 1023]
        + t[(n >> 30) & 1023]
        + t[(n >> 20) & 1023]
        + t[(n >> 10) & 1023]
        + t[n & 1023]
    )


def check_ulid_encoder(samples: int = 2000) -> None:
    """Cross-check :func:`ulid_text` against python-ulid (the library the app uses)."""
    from ulid import ULID

    rng = random.Random(7)
    edge_times = [0, 1, (1 << 40) - 1, 1 << 40, (1 << 48) - 1, int(time.time() * 1000)]
    if ulid_text(0, 0) != "0" * 26 or ulid_text((1 << 48) - 1, (1 << 80) - 1) != "7" + "z" * 25:
        raise AssertionError("ULID encoder is wrong at the edges")
    times = edge_times + [rng.getrandbits(48) for _ in range(samples)]
    for ms in times:
        randomness = rng.getrandbits(80)
        expected = str(ULID.from_bytes(ms.to_bytes(6, "big") + randomness.to_bytes(10, "big")))
        got = ulid_text(ms, randomness)
        expected = expected.lower()
        if got != expected:
            raise AssertionError(f"ULID encoder mismatch for {ms}: {got} != {expected}")


def sqlite_datetime(microseconds: int) -> str:
    """Naive-UTC text exactly as SQLAlchemy's SQLite DATETIME stores it (what UtcDateTime binds).

    Format ``YYYY-MM-DD HH:MM:SS.ffffff`` (microseconds always present), which sorts as text.
    """
    return (_EPOCH + timedelta(microseconds=microseconds)).isoformat(" ", "microseconds")


def postgres_datetime(microseconds: int) -> datetime:
    """An aware UTC datetime, what ``UtcDateTime`` binds to a ``timestamptz`` column."""
    return _EPOCH_UTC + timedelta(microseconds=microseconds)


# How each backend stores a time (from microseconds since the epoch) and a boolean.
STORED_FORMS: dict[str, tuple[Callable[[int], Any], Any, Any]] = {
    "sqlite": (sqlite_datetime, 0, 1),
    "postgresql": (postgres_datetime, False, True),
}


# --------------------------------------------------------------------------- the fill

PROMPTS = (
    "calm lofi piano for studying",
    "upbeat synthwave with driving bass",
    "ambient pads, slow evolving textures",
    "jazzy hip hop beat with warm keys",
    "cinematic strings building to a climax",
    "acoustic folk guitar, gentle and warm",
    "minimal techno loop, 124 bpm",
    "bossa nova with soft brushes",
    "epic orchestral trailer music",
    "chiptune adventure theme",
    "deep house groove with a rolling bassline",
    "rainy night jazz trio",
    "meditative drone with singing bowls",
    "funky disco strut with slap bass",
    "melancholic solo cello",
    "bright pop ukulele jingle",
)
STYLE_TAGS = (
    "lofi",
    "chill",
    "ambient",
    "jazz",
    "cinematic",
    "electronic",
    "acoustic",
    "focus",
    "upbeat",
    "dark",
    "retro",
    "orchestral",
)
TITLES = (None, None, None, "Morning focus", "Night drive", "Untitled sketch", "Rainy day")
ERROR_MESSAGES = (
    "The renderer stopped unexpectedly; the job was retried and failed again.",
    "Encoding the audio failed.",
    "The job's lease expired too many times.",
)
REFUSAL_REASONS = (
    "artist_imitation: requests to imitate a named real artist are not allowed.",
    "copyrighted_lyrics: reproducing the lyrics of a known song is not allowed.",
)
JOB_COLUMNS = (
    "id",
    "org_id",
    "user_id",
    "status",
    "progress",
    "engine",
    "mode",
    "created_at",
    "updated_at",
    "result_track_id",
    "error_message",
    "refusal_reason",
    "request",
    "idempotency_key",
    "request_fingerprint",
    "available_at",
    "attempt",
    "max_attempts",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested",
    "started_at",
    "finished_at",
)


@dataclass(frozen=True)
class RequestTemplate:
    """A stored ``request`` JSON text with its mode and the app's fingerprint of it."""

    mode: str
    request_json: str
    fingerprint: str


def request_templates(rng: random.Random, count: int = 256) -> list[RequestTemplate]:
    """Distinct, valid create requests, stored the way the app stores them."""
    from musicstudio.services.generations import NewGeneration

    out: list[RequestTemplate] = []
    for _ in range(count):
        req = NewGeneration(
            engine="studio",
            prompt=rng.choice(PROMPTS),
            duration_seconds=rng.choice((15, 30, 30, 60, 90, 120, 180)),
            mode="focus" if rng.random() < 0.1 else "creation",
            instrumental=rng.random() < 0.7,
            style_tags=tuple(rng.sample(STYLE_TAGS, rng.randint(0, 3))),
            title=rng.choice(TITLES),
            seed=rng.randrange(2**31) if rng.random() < 0.2 else None,
        )
        # Same shape as services.generations.create_job; SQLAlchemy's JSON type uses json.dumps.
        request = {k: v for k, v in asdict(req).items() if k not in ("engine", "mode")}
        request["style_tags"] = list(req.style_tags)
        out.append(RequestTemplate(req.mode, json.dumps(request), req.fingerprint()))
    return out


@dataclass
class FillResult:
    """What was written, and how long it took."""

    rows: int
    seconds: float
    analyze_seconds: float
    db_bytes: int
    newest_id: str
    oldest_id: str
    indexes_rebuilt: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)


def job_rows(
    count: int,
    org_id: str,
    user_id: str,
    seed: int,
    end: datetime,
    *,
    backend: str = "sqlite",
    batch_size: int = FILL_BATCH,
) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of ``generation_jobs`` rows (``JOB_COLUMNS`` order), oldest first.

    Jobs arrive with exponential gaps averaging 30 s (1M jobs ≈ a year of history, 10M ≈ ten)
    and end at ``end``. Mostly succeeded; a few failed, cancelled and refused; the newest
    three are queued / running like a user with work in progress. ``backend`` picks the
    stored form of times and booleans (``STORED_FORMS``); the same seed gives the same jobs
    on both backends.
    """
    stamp, false, true = STORED_FORMS[backend]
    rng = random.Random(seed)
    templates = request_templates(rng)
    mean_gap_us = 30_000_000
    end_us = int((end.replace(tzinfo=None) - _EPOCH) / timedelta(microseconds=1))
    # Walk backwards from the end so the newest job is always close to "now". The gaps are
    # drawn first (8 bytes each in an array: 80 MB at 10M, not a list of int objects).
    gaps = array("q", (max(1, int(rng.expovariate(1 / mean_gap_us))) for _ in range(count)))
    created_us = end_us - sum(gaps)
    lease_expires = stamp(end_us + 30_000_000)
    getrandbits = rng.getrandbits
    uniform = rng.random  # C; randint/randrange cost ~1 µs each in pure Python
    n_templates = len(templates)
    batch: list[tuple[Any, ...]] = []
    for index in range(count):
        created_us += gaps[index]
        created = stamp(created_us)
        job_id = "mgen_" + ulid_text(created_us // 1000, getrandbits(80))
        template = templates[int(uniform() * n_templates)]
        from_end = count - 1 - index
        roll = uniform()
        if from_end < 2:
            status = "queued"
        elif from_end == 2:
            status = "running"
        elif roll < 0.90:
            status = "succeeded"
        elif roll < 0.94:
            status = "failed"
        elif roll < 0.965:
            status = "cancelled"
        else:
            status = "refused"
        progress = 0
        attempt = 0
        started: Any = None
        finished: Any = None
        updated = created
        result_track_id = error_message = refusal_reason = None
        lease_owner: str | None = None
        lease_until: Any = None
        cancel_requested = false
        if status == "refused":
            refusal_reason = REFUSAL_REASONS[index % len(REFUSAL_REASONS)]
            finished = updated = created
        elif status == "queued":
            pass
        elif status == "cancelled" and roll < 0.955:  # cancelled while still queued
            finished_us = created_us + 500_000 + int(uniform() * 59_500_000)
            finished = updated = stamp(finished_us)
        else:
            started_us = created_us + 20_000 + int(uniform() * 2_980_000)
            started = stamp(started_us)
            finished_us = started_us + 2_000_000 + int(uniform() * 38_000_000)
            attempt = 1
            if status == "succeeded":
                progress = 100
                attempt = 2 if roll < 0.01 else 1
                result_track_id = "mtrack_" + ulid_text(finished_us // 1000, getrandbits(80))
            elif status == "failed":
                progress = int(uniform() * 91)
                attempt = MAX_ATTEMPTS
                error_message = ERROR_MESSAGES[index % len(ERROR_MESSAGES)]
            elif status == "cancelled":  # cancelled while running: the worker saw the flag
                progress = 5 + int(uniform() * 76)
                cancel_requested = true
            if status == "running":
                progress = 40
                lease_owner = "bench-host:4242:5f3a9c1e"  # host:pid:random, like the worker
                lease_until = lease_expires
                updated = started
            else:
                finished = updated = stamp(finished_us)
        idempotency_key = f"{getrandbits(128):032x}" if uniform() < 0.2 else None
        batch.append(
            (
                job_id,
                org_id,
                user_id,
                status,
                progress,
                "studio",
                template.mode,
                created,
                updated,
                result_track_id,
                error_message,
                refusal_reason,
                template.request_json,
                idempotency_key,
                template.fingerprint,
                created,  # available_at
                attempt,
                MAX_ATTEMPTS,
                lease_owner,
                lease_until,
                cancel_requested,
                started,
                finished,
            )
        )
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def fill_jobs(db_path: Path, org_id: str, user_id: str, count: int, seed: int) -> FillResult:
    """Bulk-insert ``count`` jobs in one transaction, then ANALYZE and checkpoint.

    Rows are inserted with ``executemany`` in batches while the table's secondary indexes
    are dropped; they are re-created from their own ``sqlite_master`` text (identical names
    and definitions) before COMMIT, which sorts once instead of updating five B-trees per
    row. (Generating rows in a second process was measured too: no faster on two cores.)
    """
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: keep the indexes in memory
        conn.execute("PRAGMA temp_store=MEMORY")
        # A Python callback now and then lets Ctrl-C / SIGTERM abort a long statement (an
        # index build at 10M rows takes minutes) instead of waiting for it.
        conn.set_progress_handler(lambda: 0, 1_000_000)
        placeholders = ", ".join("?" for _ in JOB_COLUMNS)
        sql = f"INSERT INTO generation_jobs ({', '.join(JOB_COLUMNS)}) VALUES ({placeholders})"
        statuses: dict[str, int] = {}
        newest = oldest = ""
        conn.execute("BEGIN")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = 'generation_jobs' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        generating = inserting = 0.0
        t_generate = time.perf_counter()
        for batch in job_rows(count, org_id, user_id, seed, datetime.now(UTC)):
            t_insert = time.perf_counter()
            generating += t_insert - t_generate
            conn.executemany(sql, batch)
            t_generate = time.perf_counter()
            inserting += t_generate - t_insert
            oldest = oldest or batch[0][0]
            newest = batch[-1][0]
            for row in batch:
                statuses[row[3]] = statuses.get(row[3], 0) + 1
        t_index = time.perf_counter()
        for _, create_sql in indexes:
            conn.execute(create_sql)
        t_commit = time.perf_counter()
        conn.execute("COMMIT")
        fill_done = time.perf_counter()
        phases = {
            "generating": generating,
            "inserting": inserting,
            "indexing": t_commit - t_index,
            "committing": fill_done - t_commit,
        }
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        analyze_seconds = time.perf_counter() - fill_done
    finally:
        conn.close()
    return FillResult(
        rows=count,
        seconds=fill_done - started,
        analyze_seconds=analyze_seconds,
        db_bytes=db_path.stat().st_size,
        newest_id=newest,
        oldest_id=oldest,
        indexes_rebuilt=[name for name, _ in indexes],
        phases=phases,
        statuses=dict(sorted(statuses.items())),
    )


# --------------------------------------------------------------------------- PostgreSQL

# Bulk-load settings of the filling session only (the server's configuration is untouched):
# big sorts in memory for the index builds, no flush wait at COMMIT.
POSTGRES_FILL_SETTINGS = {"maintenance_work_mem": "1GB", "synchronous_commit": "off"}


async def fill_jobs_postgres(
    dsn: str, org_id: str, user_id: str, count: int, seed: int
) -> FillResult:
    """Bulk-load ``count`` jobs with binary ``COPY`` in one transaction, then VACUUM ANALYZE.

    Inside the transaction every index of ``generation_jobs`` (primary key included) and the
    foreign keys from and to it are dropped, the rows are streamed into one ``COPY`` (asyncpg
    ``copy_records_to_table`` reading a generator, so only one batch is in memory), and then
    everything is re-created from its own catalog text (``pg_indexes.indexdef``,
    ``pg_get_constraintdef``): identical names and definitions, one sort per index instead of
    six B-tree insertions per row and no per-row foreign-key trigger. ``VACUUM (ANALYZE)``
    afterwards sets hint bits and the visibility map and gathers statistics, so autovacuum has
    nothing left to do on the table while the benchmark measures.
    """
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(dsn, server_settings=POSTGRES_FILL_SETTINGS)
    try:
        statuses: dict[str, int] = {}
        ends = {"oldest": "", "newest": ""}
        timing = {"generating": 0.0}

        def rows() -> Iterator[tuple[Any, ...]]:
            # Time spent making rows is measured here; the rest of the COPY is the driver
            # encoding them and the server storing them (interleaved, in this one stream).
            batches = job_rows(
                count, org_id, user_id, seed, datetime.now(UTC), backend="postgresql"
            )
            while True:
                t0 = time.perf_counter()
                batch = next(batches, None)
                timing["generating"] += time.perf_counter() - t0
                if batch is None:
                    return
                ends["oldest"] = ends["oldest"] or batch[0][0]
                ends["newest"] = batch[-1][0]
                for row in batch:
                    statuses[row[3]] = statuses.get(row[3], 0) + 1
                yield from batch

        async with conn.transaction():
            indexes = await conn.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i"
                " WHERE i.schemaname = current_schema() AND i.tablename = 'generation_jobs'"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
            # Foreign keys of the table and those referencing it, then its primary key.
            constraints = await conn.fetch(
                "SELECT conname, conrelid::regclass::text AS tbl, contype,"
                " pg_get_constraintdef(oid) AS def FROM pg_constraint"
                " WHERE (conrelid = 'generation_jobs'::regclass AND contype IN ('p', 'f'))"
                " OR (confrelid = 'generation_jobs'::regclass AND contype = 'f')"
                " ORDER BY contype = 'p'"
            )
            for c in constraints:
                await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
            for name, _ in indexes:
                await conn.execute(f'DROP INDEX "{name}"')
            t_copy = time.perf_counter()
            await conn.copy_records_to_table(
                "generation_jobs", records=rows(), columns=list(JOB_COLUMNS)
            )
            t_index = time.perf_counter()
            # Primary key first (the referencing foreign keys need it), then the rest.
            for c in reversed(constraints):
                await conn.execute(
                    f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}'
                )
            for _, create_sql in indexes:
                await conn.execute(create_sql)
            t_commit = time.perf_counter()
        fill_done = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) generation_jobs")
        analyze_seconds = time.perf_counter() - fill_done
        db_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    copying = t_index - t_copy
    return FillResult(
        rows=count,
        seconds=fill_done - started,
        analyze_seconds=analyze_seconds,
        db_bytes=int(db_bytes),
        newest_id=ends["newest"],
        oldest_id=ends["oldest"],
        indexes_rebuilt=[c["conname"] for c in constraints] + [name for name, _ in indexes],
        phases={
            "generating": timing["generating"],
            "copying (besides generating)": copying - timing["generating"],
            "indexing": t_commit - t_index,
            "committing": fill_done - t_commit,
        },
        statuses=dict(sorted(statuses.items())),
    )


# --------------------------------------------------------------------------- disk

# Peak bytes per job during a fill, measured, with a margin. SQLite: 1.18 KB per job in the
# database file, and the one fill transaction passes through the WAL first, so at the
# checkpoint both exist (10M jobs: 11.8 GB + 11.9 GB). PostgreSQL: 1.1 KB per job (table and
# indexes); its WAL stays near max_wal_size.
BYTES_PER_JOB = {"sqlite": 2_600, "postgresql": 1_500}
# Room on top: temp sorts, PostgreSQL's WAL.
DISK_HEADROOM = 3 * 1024**3


def disk_needed(backend: str, count: int) -> int:
    """A generous estimate of the disk a fill of ``count`` jobs needs."""
    return BYTES_PER_JOB[backend] * count + DISK_HEADROOM
