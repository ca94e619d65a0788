"""Benchmark ``GET /v1/music/{org}/generations`` (the job list) on SQLite and PostgreSQL.

For each backend and size (default 10k, 1M and 10M jobs): a fresh data dir (and, for
PostgreSQL, a fresh database on the local server), ``musicstudio migrate``, ``musicstudio
admin bootstrap --json``, then ``generation_jobs`` is bulk-filled for that one user with
app-valid rows (``bench/fill_jobs.py``: ``sqlite3`` ``executemany`` or asyncpg binary
``COPY``, indexes dropped and re-created, then ANALYZE). Then, side by side in the same run,
three servers under the same uvicorn settings, each pinned to one core (``taskset``):

* **bare**: a raw ASGI callable returning the page bytes saved from the real server,
  pre-serialized: the server's ceiling (``bench/list_servers.py``);
* **lean**: a plain Starlette route running the same page SQL through the plain driver
  (``sqlite3`` / an asyncpg pool) and serializing with orjson, no auth
  (``bench/list_servers.py``), its bytes checked against the real endpoint's;
* **real**: ``musicstudio serve --workers 0`` (authentication, scoping, validation).

``wrk`` (pinned to the other core) drives each endpoint at each offset for a fixed window
after a warm-up, the three back to back per offset and the order reversed every other
round; without wrk, ``bench/loadgen.py``'s asyncio generator is used (and says so). The
in-process time of the page query (and of the keyset alternative) is measured too. Results:
Markdown tables on stdout, JSON under ``bench/results/``.

    .venv/bin/python bench/list_jobs.py                  # both backends, 10k, 1M, 10M
    .venv/bin/python bench/list_jobs.py --quick          # smoke run: 2000 rows, 2 s windows
    .venv/bin/python bench/list_jobs.py --backends sqlite --sizes 10000,1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
from fill_jobs import (
    FillResult,
    check_ulid_encoder,
    disk_needed,
    fill_jobs,
    fill_jobs_postgres,
)
from list_servers import POSTGRES_LIST_SQL, SQLITE_LIST_SQL, app_sql_matches
from loadgen import run_wrk, wrk_path
from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LOADGEN = BENCH_DIR / "loadgen.py"
SERVERS = BENCH_DIR / "list_servers.py"
PAGE_LIMIT = 50
SERVER_START_TIMEOUT = 120.0
BACKENDS = ("sqlite", "postgresql")
ENDPOINTS = ("bare", "lean", "real")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# A page whose queue of `connections` queries would take longer than this (in-process SQL
# time x connections) is measured with one connection and a longer window instead: 8
# concurrent multi-second scans only measure queueing, and their requests would outlive the
# window and spill into the next measurement.
SLOW_QUEUE_MS = 2_000.0
SLOW_WINDOW_MAX_S = 30.0
REQUEST_TIMEOUT_S = 60.0

# --------------------------------------------------------------------------- SQL timing

SQLITE_KEYSET_SQL = (
    "SELECT id, status, progress, engine, mode, created_at, result_track_id, error_message,"
    " refusal_reason FROM generation_jobs WHERE org_id = ? AND user_id = ?"
    " AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
)
POSTGRES_KEYSET_SQL = (
    "SELECT id, status, progress, engine, mode, created_at, result_track_id, error_message,"
    " refusal_reason FROM generation_jobs WHERE org_id = $1 AND user_id = $2"
    " AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5"
)
MIN_SQL_RUNS = 3
MAX_SQL_RUNS = 500


def _median_ms_sqlite(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], budget: float
) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < MIN_SQL_RUNS or (
        time.perf_counter() < deadline and len(times) < MAX_SQL_RUNS
    ):
        t0 = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - t0)
        if len(rows) != PAGE_LIMIT:
            raise AssertionError(f"expected {PAGE_LIMIT} rows, got {len(rows)}")
    return statistics.median(times) * 1000


def time_sql_sqlite(
    db_path: Path, org_id: str, user_id: str, offsets: Sequence[int], budget: float
) -> list[dict[str, Any]]:
    """In-process median time of the app's list query (and the keyset equivalent) per offset."""
    conn = sqlite3.connect(db_path)
    conn.set_progress_handler(lambda: 0, 1_000_000)  # Ctrl-C can stop a deep scan
    try:
        out: list[dict[str, Any]] = []
        for offset in offsets:
            params = (org_id, user_id, PAGE_LIMIT, offset)
            plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + SQLITE_LIST_SQL, params)]
            offset_ms = _median_ms_sqlite(conn, SQLITE_LIST_SQL, params, budget)
            keyset_ms: float | None = None
            if offset > 0:
                # The keyset page starts after the last row of the previous page.
                after = conn.execute(SQLITE_LIST_SQL, (org_id, user_id, 1, offset - 1)).fetchone()
                keyset = (org_id, user_id, after[5], after[0], PAGE_LIMIT)
                if (
                    conn.execute(SQLITE_KEYSET_SQL, keyset).fetchall()
                    != conn.execute(SQLITE_LIST_SQL, params).fetchall()
                ):
                    raise AssertionError(f"keyset and OFFSET pages differ at offset {offset}")
                keyset_ms = _median_ms_sqlite(conn, SQLITE_KEYSET_SQL, keyset, budget)
            out.append(
                {
                    "offset": offset,
                    "offset_query_ms": offset_ms,
                    "keyset_query_ms": keyset_ms,
                    "plan": plan,
                }
            )
        return out
    finally:
        conn.close()


async def _median_ms_postgres(
    conn: asyncpg.Connection, sql: str, params: Sequence[Any], budget: float
) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < MIN_SQL_RUNS or (
        time.perf_counter() < deadline and len(times) < MAX_SQL_RUNS
    ):
        t0 = time.perf_counter()
        rows = await conn.fetch(sql, *params)
        times.append(time.perf_counter() - t0)
        if len(rows) != PAGE_LIMIT:
            raise AssertionError(f"expected {PAGE_LIMIT} rows, got {len(rows)}")
    return statistics.median(times) * 1000


async def time_sql_postgres(
    dsn: str, org_id: str, user_id: str, offsets: Sequence[int], budget: float
) -> list[dict[str, Any]]:
    """As :func:`time_sql_sqlite`, on asyncpg with the app's planner settings."""
    from musicstudio.db.database import POSTGRES_SETTINGS

    conn = await asyncpg.connect(dsn, server_settings=dict(POSTGRES_SETTINGS))
    try:
        out: list[dict[str, Any]] = []
        for offset in offsets:
            params = (org_id, user_id, PAGE_LIMIT, offset)
            plan = [r[0] for r in await conn.fetch("EXPLAIN " + POSTGRES_LIST_SQL, *params)]
            offset_ms = await _median_ms_postgres(conn, POSTGRES_LIST_SQL, params, budget)
            keyset_ms: float | None = None
            if offset > 0:
                after = await conn.fetchrow(POSTGRES_LIST_SQL, org_id, user_id, 1, offset - 1)
                keyset = (org_id, user_id, after["created_at"], after["id"], PAGE_LIMIT)
                if [tuple(r) for r in await conn.fetch(POSTGRES_KEYSET_SQL, *keyset)] != [
                    tuple(r) for r in await conn.fetch(POSTGRES_LIST_SQL, *params)
                ]:
                    raise AssertionError(f"keyset and OFFSET pages differ at offset {offset}")
                keyset_ms = await _median_ms_postgres(conn, POSTGRES_KEYSET_SQL, keyset, budget)
            out.append(
                {
                    "offset": offset,
                    "offset_query_ms": offset_ms,
                    "keyset_query_ms": keyset_ms,
                    "plan": plan,
                }
            )
        return out
    finally:
        await conn.close()


# --------------------------------------------------------------------------- processes


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_reachable(admin_url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        asyncio.run(_admin(admin_url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class Processes:
    """Subprocesses, temp dirs and PostgreSQL databases of the run, removed by :meth:`close`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dirs: list[Path] = []
        self.databases: list[str] = []

    def tempdir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.dirs.append(path)
        return path

    def database(self) -> tuple[str, str]:
        """A fresh database: (its name, its ``postgresql+asyncpg://`` URL for the app)."""
        name = f"musicstudio_bench_{secrets.token_hex(4)}"
        asyncio.run(_admin(self.admin_url, f'CREATE DATABASE "{name}"'))
        self.databases.append(name)
        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=name)
        return name, url.render_as_string(hide_password=False)

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as fh:
            proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (uvicorn shuts down cleanly), then SIGKILL if it lingers."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        """Stop every process, then drop the databases and remove the dirs (reusable after)."""
        for proc in list(self.procs):
            try:
                self.stop(proc)
            except Exception as exc:  # keep cleaning up the rest
                print(f"warning: could not stop pid {proc.pid}: {exc}", file=sys.stderr)
        for name in list(self.databases):
            try:
                asyncio.run(
                    _admin(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
                self.databases.remove(name)
            except Exception as exc:
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.dirs.clear()


def source_digest() -> str:
    """A digest of the app's source: the real endpoint is whatever code the server loads."""
    import hashlib

    import musicstudio

    root = Path(musicstudio.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not ready after {SERVER_START_TIMEOUT} s")


def musicstudio_cli() -> str:
    beside = Path(sys.executable).parent / "musicstudio"
    found = str(beside) if beside.exists() else shutil.which("musicstudio")
    if found is None:
        raise RuntimeError("the musicstudio command is not installed (run `make install`)")
    return found


def app_env(data_dir: Path, secret: str, database_url: str | None) -> dict[str, str]:
    """The environment of the app's processes: the data dir, and the database if not SQLite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICSTUDIO_")}
    env.update(
        MUSICSTUDIO_DATA_DIR=str(data_dir),
        MUSICSTUDIO_SECRET_KEY=secret,
        MUSICSTUDIO_WORKERS="0",
        # One key drives the whole load: its bucket is still taken on every request (that
        # cost is measured) but is made too large to ever refuse one.
        MUSICSTUDIO_RATE_LIMIT_PER_MINUTE="1000000000",
        MUSICSTUDIO_RATE_LIMIT_BURST="1000000000",
    )
    if database_url is not None:
        env["MUSICSTUDIO_DATABASE_URL"] = database_url
    return env


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


def check_disk(path: str, needed: int, what: str) -> dict[str, Any]:
    """Fail early when ``path``'s file system has less free space than ``needed``."""
    free = shutil.disk_usage(path).free
    if free < needed:
        raise SystemExit(
            f"not enough disk for {what}: {needed / 1e9:.1f} GB needed on {path},"
            f" {free / 1e9:.1f} GB free (use smaller --sizes)"
        )
    return {"path": path, "free_bytes": free, "needed_bytes": needed}


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    """One line of the results table."""

    backend: str
    size: int
    endpoint: str
    offset: int
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    real_over_lean: float | None = None
    real_over_bare: float | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    """How one offset is driven (the same for the three endpoints, except bare's window)."""

    offset: int
    connections: int
    warmup: float
    duration: float
    drain: float
    slow: bool


def measure(
    url: str,
    api_key: str,
    *,
    tool: str,
    connections: int,
    warmup: float,
    duration: float,
    cpu: int | None,
) -> dict[str, Any]:
    """One load run, on the client core; returns its summary (req/s, p50/p99 ms, errors)."""
    headers = [("X-API-Key", api_key)]
    if tool == "wrk":
        result = run_wrk(
            url,
            headers,
            connections=connections,
            warmup=warmup,
            duration=duration,
            timeout=REQUEST_TIMEOUT_S,
            cpu=cpu,
        )
        result.pop("wrk_report", None)
        return result
    cmd = [
        sys.executable,
        str(LOADGEN),
        "--tool",
        "python",
        "--url",
        url,
        "--header",
        f"X-API-Key: {api_key}",
        "--connections",
        str(connections),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
    ]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    done = subprocess.run(cmd, capture_output=True, check=True, timeout=duration + warmup + 300)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def offsets_for(size: int) -> list[int]:
    """First page, page 200 (or the last page of a small set), and deep pages of big sets."""
    last = size - PAGE_LIMIT
    offsets = [0, min(10_000, last)]
    if size >= 200_000:
        offsets += [size // 2, last]
    return sorted(set(offsets))


def plan_offsets(sql: list[dict[str, Any]], args: argparse.Namespace) -> list[Plan]:
    """Normal offsets: ``--connections``; slow ones (see SLOW_QUEUE_MS): one, a longer window."""
    plans = []
    for item in sql:
        query_s = item["offset_query_ms"] / 1000
        if item["offset_query_ms"] * args.connections > SLOW_QUEUE_MS:
            window = min(max(args.duration, 6 * query_s), SLOW_WINDOW_MAX_S)
            plans.append(Plan(item["offset"], 1, 0.0, math.ceil(window), query_s + 0.5, True))
        else:
            drain = min(query_s * args.connections + 0.2, 5.0)
            plans.append(
                Plan(item["offset"], args.connections, args.warmup, args.duration, drain, False)
            )
    return plans


def verify_real(base: str, api_key: str, fill: FillResult, size: int) -> None:
    """The app reads the filled rows: full first and last pages, in the right order."""
    headers = {"X-API-Key": api_key}
    first = httpx.get(base, params={"limit": PAGE_LIMIT}, headers=headers, timeout=120)
    first.raise_for_status()
    jobs = first.json()["jobs"]
    if len(jobs) != PAGE_LIMIT or jobs[0]["id"] != fill.newest_id:
        raise AssertionError(f"first page is wrong: {len(jobs)} jobs, first {jobs[:1]}")
    if jobs[0]["status"] != "queued" or jobs[2]["status"] != "running":
        raise AssertionError("the newest jobs should be queued, queued, running")
    params = {"limit": PAGE_LIMIT, "offset": size - PAGE_LIMIT}
    last = httpx.get(base, params=params, headers=headers, timeout=120)
    last.raise_for_status()
    jobs = last.json()["jobs"]
    if len(jobs) != PAGE_LIMIT or jobs[-1]["id"] != fill.oldest_id:
        raise AssertionError(f"last page is wrong: {len(jobs)} jobs, last {jobs[-1:]}")
    done = httpx.get(base, params={"limit": 5, "status": "succeeded"}, headers=headers, timeout=60)
    done.raise_for_status()
    if [j["status"] for j in done.json()["jobs"]] != ["succeeded"] * 5:
        raise AssertionError("status filter returned other statuses")


def compare_bodies(name: str, got: bytes, expected: bytes, offset: int) -> str:
    """'identical', or 'same JSON' (bytes differ only in layout); raises when the data differ."""
    if got == expected:
        return "identical"
    a, b = json.loads(got), json.loads(expected)
    if a == b:
        return "same JSON"
    for i, (x, y) in enumerate(zip(a.get("jobs", []), b.get("jobs", []), strict=False)):
        if x != y:
            diff = {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}
            raise AssertionError(f"{name} page at offset {offset}, job {i} differs: {diff}")
    raise AssertionError(f"{name} page at offset {offset} differs from the real one")


def start_server(
    procs: Processes,
    kind: str,
    cmd: list[str],
    env: dict[str, str],
    data_dir: Path,
    health: str,
    port: int,
) -> subprocess.Popen[bytes]:
    log = data_dir / f"{kind}-server.log"
    proc = procs.start(cmd, env, log)
    wait_ready(f"http://127.0.0.1:{port}{health}", proc, log)
    return proc


def bench_size(
    backend: str, size: int, args: argparse.Namespace, procs: Processes
) -> dict[str, Any]:
    """Fill, start the three servers, measure every offset; returns this size's results."""
    tag = f"[{backend} {size:,}]"
    cli = musicstudio_cli()
    digest = source_digest()
    data_dir = procs.tempdir(f"musicstudio-bench-{backend}-{size}-")
    database_url: str | None = None
    dsn = ""
    if backend == "sqlite":
        disk = check_disk(str(data_dir), disk_needed(backend, size), f"{size:,} SQLite jobs")
    else:
        _name, database_url = procs.database()
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        data_directory = asyncio.run(_fetchval(dsn, "SHOW data_directory"))
        where = data_directory if Path(data_directory).exists() else str(data_dir)
        disk = check_disk(where, disk_needed(backend, size), f"{size:,} PostgreSQL jobs")
    env = app_env(data_dir, secrets.token_urlsafe(32), database_url)
    t0 = time.perf_counter()
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    boot = subprocess.run(
        [cli, "admin", "bootstrap", "--json"], env=env, check=True, capture_output=True
    )
    account = json.loads(boot.stdout)
    setup_seconds = time.perf_counter() - t0
    org_id, user_id, api_key = account["organization_id"], account["user_id"], account["api_key"]

    print(f"{tag} filling {size:,} jobs …", file=sys.stderr, flush=True)
    seed = args.seed + size
    if backend == "sqlite":
        db_path = data_dir / "musicstudio.db"
        fill = fill_jobs(db_path, org_id, user_id, size, seed=seed)
    else:
        fill = asyncio.run(fill_jobs_postgres(dsn, org_id, user_id, size, seed=seed))
    print(
        f"{tag} filled in {fill.seconds:.1f} s (+ {fill.analyze_seconds:.1f} s ANALYZE),"
        f" {fill.db_bytes / 1e6:,.0f} MB, phases"
        f" {', '.join(f'{k} {v:.1f} s' for k, v in fill.phases.items())}",
        file=sys.stderr,
        flush=True,
    )
    offsets = offsets_for(size)
    if backend == "sqlite":
        sql = time_sql_sqlite(db_path, org_id, user_id, offsets, budget=args.sql_budget)
    else:
        sql = asyncio.run(time_sql_postgres(dsn, org_id, user_id, offsets, args.sql_budget))
    for item in sql:
        keyset = item["keyset_query_ms"]
        print(
            f"{tag} SQL offset {item['offset']:>10,}: {item['offset_query_ms']:9.3f} ms"
            + (f" (keyset {keyset:.3f} ms)" if keyset is not None else ""),
            file=sys.stderr,
            flush=True,
        )
    plans = plan_offsets(sql, args)
    cpu = args.server_cpu

    ports = {kind: free_port() for kind in ENDPOINTS}
    roots = {kind: f"http://127.0.0.1:{port}" for kind, port in ports.items()}
    path = f"/v1/music/{org_id}/generations"
    real_cmd = [cli, "serve", "--host", "127.0.0.1", "--port", str(ports["real"]), "--workers", "0"]
    start_server(procs, "real", pinned(real_cmd, cpu), env, data_dir, "/readyz", ports["real"])
    real_base = roots["real"] + path
    verify_real(real_base, api_key, fill, size)

    pages_dir = data_dir / "pages"
    pages_dir.mkdir()
    pages: dict[int, bytes] = {}
    for offset in offsets:
        page = httpx.get(
            real_base,
            params={"limit": PAGE_LIMIT, "offset": offset},
            headers={"X-API-Key": api_key},
            timeout=120,
        )
        page.raise_for_status()
        pages[offset] = page.content
        (pages_dir / f"page-{offset}.json").write_bytes(page.content)

    lean_cmd = [sys.executable, str(SERVERS), "lean", "--port", str(ports["lean"])]
    lean_cmd += ["--database-url", database_url or f"sqlite+aiosqlite:///{db_path}"]
    lean_cmd += ["--user-id", user_id, "--sqlite-driver", args.lean_sqlite]
    start_server(procs, "lean", pinned(lean_cmd, cpu), env, data_dir, "/healthz", ports["lean"])
    bare_cmd = [sys.executable, str(SERVERS), "bare", "--port", str(ports["bare"])]
    bare_cmd += ["--pages", str(pages_dir)]
    start_server(procs, "bare", pinned(bare_cmd, cpu), env, data_dir, "/healthz", ports["bare"])
    same: dict[str, dict[str, str]] = {"lean": {}, "bare": {}}
    for kind in ("lean", "bare"):
        for offset in offsets:
            got = httpx.get(
                roots[kind] + path, params={"limit": PAGE_LIMIT, "offset": offset}, timeout=120
            )
            got.raise_for_status()
            same[kind][str(offset)] = compare_bodies(kind, got.content, pages[offset], offset)
    print(f"{tag} lean vs real bodies: {same['lean']}", file=sys.stderr, flush=True)

    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for round_no in range(args.rounds):
        for plan in plans:
            # Reverse the order every other round so slow drift in machine load cancels out.
            order = ENDPOINTS if round_no % 2 == 0 else ENDPOINTS[::-1]
            for endpoint in order:
                url = f"{roots[endpoint]}{path}?limit={PAGE_LIMIT}&offset={plan.offset}"
                # The bare endpoint reads no database: a long window would tell nothing more.
                window = args.duration if endpoint == "bare" else plan.duration
                load_before = os.getloadavg()[0]
                result = measure(
                    url,
                    api_key,
                    tool=args.tool,
                    connections=plan.connections,
                    warmup=plan.warmup,
                    duration=window,
                    cpu=args.client_cpu,
                )
                result["round"] = round_no + 1
                result["loadavg_1m_before"] = load_before
                result["loadavg_1m_after"] = os.getloadavg()[0]
                runs.setdefault((endpoint, plan.offset), []).append(result)
                print(
                    f"{tag} round {round_no + 1} {endpoint:4} offset {plan.offset:>10,}"
                    f" c{plan.connections}: {result['rps']:9.1f} req/s"
                    f"  p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms"
                    f"  errors {result['errors']}",
                    file=sys.stderr,
                    flush=True,
                )
                if endpoint != "bare":
                    time.sleep(plan.drain)  # let requests cut off by the window finish

    rows: list[Row] = []
    for plan in plans:
        by_endpoint: dict[str, Row] = {}
        for endpoint in ENDPOINTS:
            results = runs[(endpoint, plan.offset)]
            by_endpoint[endpoint] = row = Row(
                backend=backend,
                size=size,
                endpoint=endpoint,
                offset=plan.offset,
                connections=plan.connections,
                rps=statistics.median(r["rps"] for r in results),
                p50_ms=statistics.median(r["p50_ms"] for r in results),
                p99_ms=statistics.median(r["p99_ms"] for r in results),
                errors=sum(r["errors"] for r in results),
                requests=sum(r["requests"] for r in results),
                rounds=results,
            )
            rows.append(row)
        real = by_endpoint["real"]
        if by_endpoint["lean"].rps > 0:
            real.real_over_lean = real.rps / by_endpoint["lean"].rps
        if by_endpoint["bare"].rps > 0:
            real.real_over_bare = real.rps / by_endpoint["bare"].rps

    procs.close()  # servers stopped, database dropped, data dir removed: room for the next
    after = source_digest()
    if after != digest:
        print(f"{tag} warning: the app's source changed while measuring", file=sys.stderr)
    return {
        "backend": backend,
        "size": size,
        "source_digest": digest if after == digest else f"{digest} → {after}",
        "setup_seconds": setup_seconds,
        "disk_check": disk,
        "fill": asdict(fill),
        "sql": sql,
        "plans": [asdict(p) for p in plans],
        "bodies_vs_real": same,
        "rows": [asdict(r) for r in rows],
        "page_bytes": {str(o): len(b) for o, b in pages.items()},
    }


async def _fetchval(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return _fmt(value, 3 if value < 1 else 2 if value < 100 else 0)


def markdown_table(blocks: list[dict[str, Any]]) -> str:
    """The results: every endpoint at every offset; ratios on the real rows (req/s ÷ req/s)."""
    lines = [
        "| backend | size | offset | endpoint | conns | req/s | p50 ms | p99 ms | errors"
        " | real/lean | real/bare |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for block in blocks:
        for row in block["rows"]:
            lines.append(
                f"| {row['backend']} | {row['size']:,} | {row['offset']:,} | {row['endpoint']}"
                f" | {row['connections']} | {_fmt(row['rps'], 1 if row['rps'] < 100 else 0)}"
                f" | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {row['errors']}"
                f" | {_fmt(row['real_over_lean'], 3)} | {_fmt(row['real_over_bare'], 3)} |"
            )
    return "\n".join(lines)


def side_by_side_table(blocks: list[dict[str, Any]], backend: str) -> str:
    """One backend, the three endpoints side by side per size and offset."""
    lines = [
        "| size | offset | conns | bare req/s | lean req/s | real req/s | bare p50 / p99 ms"
        " | lean p50 / p99 ms | real p50 / p99 ms | errors | real/lean | real/bare |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def rps(row: dict[str, Any]) -> str:
        value = row["rps"]
        return _fmt(value, 2 if value < 1 else 1 if value < 100 else 0)

    for block in blocks:
        if block["backend"] != backend:
            continue
        rows = block["rows"]
        for offset in sorted({r["offset"] for r in rows}):
            by = {r["endpoint"]: r for r in rows if r["offset"] == offset}
            bare, lean, real = by["bare"], by["lean"], by["real"]
            lines.append(
                f"| {block['size']:,} | {offset:,} | {real['connections']}"
                f" | {rps(bare)} | {rps(lean)} | {rps(real)}"
                + "".join(f" | {_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}" for r in (bare, lean, real))
                + f" | {bare['errors'] + lean['errors'] + real['errors']}"
                f" | {_fmt(real['real_over_lean'], 2)} | {_fmt(real['real_over_bare'], 3)} |"
            )
    return "\n".join(lines)


def first_page_scaling(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per backend and endpoint: first-page p50 at the largest size ÷ at the smallest."""
    out = []
    for backend in BACKENDS:
        mine = sorted((b for b in blocks if b["backend"] == backend), key=lambda b: b["size"])
        if len(mine) < 2:
            continue
        small, large = mine[0], mine[-1]
        for endpoint in ENDPOINTS:
            a = next(r for r in small["rows"] if r["endpoint"] == endpoint and r["offset"] == 0)
            b = next(r for r in large["rows"] if r["endpoint"] == endpoint and r["offset"] == 0)
            out.append(
                {
                    "backend": backend,
                    "endpoint": endpoint,
                    "small_size": small["size"],
                    "large_size": large["size"],
                    "p50_small_ms": a["p50_ms"],
                    "p50_large_ms": b["p50_ms"],
                    "p50_ratio": b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else math.nan,
                    "rps_small": a["rps"],
                    "rps_large": b["rps"],
                }
            )
    return out


def scaling_table(items: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | endpoint | p50 ms, small | p50 ms, large | large/small p50"
        " | req/s small | req/s large |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for it in items:
        lines.append(
            f"| {it['backend']} | {it['endpoint']}"
            f" | {_ms(it['p50_small_ms'])} ({it['small_size']:,})"
            f" | {_ms(it['p50_large_ms'])} ({it['large_size']:,})"
            f" | {_fmt(it['p50_ratio'], 2)} | {_fmt(it['rps_small'], 0)}"
            f" | {_fmt(it['rps_large'], 0)} |"
        )
    return "\n".join(lines)


def goals(blocks: list[dict[str, Any]], scaling: list[dict[str, Any]]) -> list[str]:
    """The issue's two goals, checked against this run."""
    out = []
    for block in blocks:
        real = next(r for r in block["rows"] if r["endpoint"] == "real" and r["offset"] == 0)
        ratio = real["real_over_lean"]
        verdict = "met" if ratio is not None and ratio >= 0.5 else "NOT met"
        out.append(
            f"- real ≥ 50 % of lean req/s, first page, {block['backend']} {block['size']:,}:"
            f" {_fmt(ratio, 3)} → {verdict}"
        )
    for it in scaling:
        if it["endpoint"] == "real":
            verdict = "met" if it["p50_ratio"] <= 1.3 else "NOT met"
            out.append(
                f"- real first-page p50 at {it['large_size']:,} ≤ 1.3 x at {it['small_size']:,},"
                f" {it['backend']}: {_fmt(it['p50_ratio'], 2)} → {verdict}"
            )
    return out


def sql_table(blocks: list[dict[str, Any]]) -> str:
    """In-process time of one page: the app's OFFSET query and the keyset equivalent."""
    lines = [
        "| backend | size | offset | OFFSET query ms | keyset query ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for block in blocks:
        for item in block["sql"]:
            lines.append(
                f"| {block['backend']} | {block['size']:,} | {item['offset']:,}"
                f" | {_ms(item['offset_query_ms'])} | {_ms(item['keyset_query_ms'])} |"
            )
    return "\n".join(lines)


def fill_table(blocks: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | size | fill s | of which generating rows s | index rebuild s"
        " | ANALYZE / VACUUM s | database MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for block in blocks:
        fill = block["fill"]
        lines.append(
            f"| {block['backend']} | {block['size']:,} | {fill['seconds']:.1f}"
            f" | {fill['phases'].get('generating', math.nan):.1f}"
            f" | {fill['phases'].get('indexing', math.nan):.1f}"
            f" | {fill['analyze_seconds']:.1f} | {fill['db_bytes'] / 1e6:,.0f} |"
        )
    return "\n".join(lines)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_info(admin_url: str | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dists = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy")
    versions = {d: _version(d) for d in (*dists, "aiosqlite", "asyncpg", "orjson")}
    wrk = wrk_path()
    if wrk is not None:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
        versions["wrk"] = out.split("\n", 1)[0].strip()
    if admin_url is not None:
        try:
            versions["postgresql"] = str(asyncio.run(_fetchval(admin_url, "SHOW server_version")))
        except Exception as exc:
            versions["postgresql"] = f"unreachable: {exc}"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "versions": versions,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated (default both)"
    )
    parser.add_argument(
        "--sizes",
        default="10000,1000000,10000000",
        help="comma-separated job counts (default 10000,1000000,10000000)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2000 jobs, 2 s windows, 1 round"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument(
        "--rounds", type=int, default=2, help="bare/lean/real runs per offset (median reported)"
    )
    parser.add_argument(
        "--loadgen",
        dest="tool",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), else bench/loadgen.py's asyncio generator",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core of the three servers")
    parser.add_argument("--client-cpu", type=int, default=1, help="core of the load generator")
    parser.add_argument(
        "--lean-sqlite",
        choices=("sqlite3", "aiosqlite"),
        default="sqlite3",
        help="driver of the lean endpoint on SQLite (default: sqlite3 inline, as the app)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MUSICSTUDIO_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin connection of the PostgreSQL server (a database per size is made on it)",
    )
    parser.add_argument(
        "--sql-budget", type=float, default=1.0, help="seconds of in-process SQL timing per query"
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated rows")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--report", type=Path, help="print the tables of a saved JSON and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "2000"
        args.duration = 2.0
        args.warmup = 1.0
        args.rounds = 1
        args.sql_budget = 0.3
    args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if any(s < PAGE_LIMIT * 2 for s in args.size_list):
        parser.error(f"every size must be at least {PAGE_LIMIT * 2}")
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.backend_list or any(b not in BACKENDS for b in args.backend_list):
        parser.error(f"--backends takes {', '.join(BACKENDS)}")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def choose_tool(args: argparse.Namespace) -> None:
    """wrk if installed (else say why the numbers will be lower); the two cores to pin to."""
    if args.tool in ("auto", "wrk") and wrk_path() is None:
        if args.tool == "wrk":
            raise SystemExit("wrk is not installed: apt-get install -y wrk")
        print(
            "warning: wrk is not installed (Debian: apt-get install -y wrk); falling back to"
            " bench/loadgen.py, a Python load generator (about 10k req/s on one core of the"
            " 2-vCPU VM): the bare endpoint's numbers may then measure the client.",
            file=sys.stderr,
        )
        args.tool = "python"
    elif args.tool == "auto":
        args.tool = "wrk"
    cores = os.sched_getaffinity(0)
    if shutil.which("taskset") is None or {args.server_cpu, args.client_cpu} - cores:
        print(
            "warning: taskset or the cores to pin to are missing: servers and load generator"
            " are not pinned",
            file=sys.stderr,
        )
        args.server_cpu = args.client_cpu = None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    if args.report is not None:
        print_report(json.loads(args.report.read_text()))
        return 0
    # Ctrl-C and SIGTERM both unwind through the finally below (even when started in the
    # background by a shell that set SIGINT to "ignore").
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    check_ulid_encoder()
    choose_tool(args)
    skipped: dict[str, str] = {}
    if "postgresql" in args.backend_list:
        why = postgres_reachable(args.postgres_url)
        if why is not None:
            print(f"warning: PostgreSQL is skipped: {why}", file=sys.stderr)
            skipped["postgresql"] = why
            args.backend_list.remove("postgresql")
    for backend in ("sqlite", "postgresql"):
        if backend in args.backend_list:
            ok, ours, theirs = app_sql_matches(backend)
            if not ok:
                print(
                    f"warning: the lean {backend} SQL differs from the app's:\n  {ours}\n"
                    f"  {' '.join(theirs.split())}",
                    file=sys.stderr,
                )
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    procs = Processes(args.postgres_url)
    blocks: list[dict[str, Any]] = []
    try:
        for backend in args.backend_list:
            for size in args.size_list:
                blocks.append(bench_size(backend, size, args, procs))
    except (KeyboardInterrupt, sqlite3.OperationalError) as exc:
        # A signal during a long SQLite statement aborts it through the progress handler.
        if isinstance(exc, sqlite3.OperationalError) and "interrupted" not in str(exc):
            raise
        print(
            "interrupted: stopping servers, dropping databases, removing temp dirs", file=sys.stderr
        )
        return 130
    finally:
        procs.close()
    total = time.perf_counter() - started

    scaling = first_page_scaling(blocks)
    digests = sorted({b["source_digest"] for b in blocks})
    if len(digests) > 1:
        print(f"warning: the app's source changed during the run: {digests}", file=sys.stderr)
    report = {
        "benchmark": "list_jobs",
        "started_utc": stamp,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "backends": args.backend_list,
            "skipped": skipped,
            "sizes": args.size_list,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "rounds": args.rounds,
            "page_limit": PAGE_LIMIT,
            "loadgen": args.tool,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "lean_sqlite_driver": args.lean_sqlite,
            "slow_queue_ms": SLOW_QUEUE_MS,
        },
        "machine": machine_info(args.postgres_url if "postgresql" in args.backend_list else None),
        "total_seconds": total,
        "source_digests": digests,
        "first_page_scaling": scaling,
        "goals": goals(blocks, scaling),
        "sizes": blocks,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"list_jobs-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str))

    print_report(report)
    print(f"- total runtime {total:.0f} s; load generator {args.tool}; JSON: {out}")
    return 0


def print_report(report: dict[str, Any]) -> None:
    """The Markdown tables of a run (also from a saved JSON: ``--report FILE``)."""
    blocks, scaling = report["sizes"], report["first_page_scaling"]
    print(markdown_table(blocks))
    print()
    for backend in BACKENDS:
        if any(b["backend"] == backend for b in blocks):
            print(f"{backend}:\n")
            print(side_by_side_table(blocks, backend))
            print()
    print(scaling_table(scaling))
    print()
    print("\n".join(report["goals"]))
    print()
    print(sql_table(blocks))
    print()
    print(fill_table(blocks))
    print()
    print(f"- app source digest(s): {', '.join(report['source_digests'])}")


if __name__ == "__main__":
    sys.exit(main())
