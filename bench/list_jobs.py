"""Benchmark ``GET /v1/music/{org}/generations`` (the job list) on SQLite at 10k and 1M jobs.

For each size: a fresh data dir, ``musicstudio migrate``, ``musicstudio admin bootstrap``,
then ``generation_jobs`` is bulk-filled for that one user with the stdlib ``sqlite3`` module
(realistic, app-valid rows: ULID ids whose time is ``created_at``, mixed statuses, the
SQLite text datetimes SQLAlchemy writes). Then, side by side in the same run:

* **real**: ``musicstudio serve --workers 0`` (one uvicorn process: key lookup + list query);
* **bare**: a one-route FastAPI app on the same uvicorn settings returning the same page
  bytes, fetched from the real server, as a pre-serialized ``Response`` (the framework floor).

``bench/loadgen.py`` (asyncio HTTP/1.1 keep-alive, own process) drives each endpoint at each
offset for a fixed window after a warm-up; bare and real run back to back per offset so their
ratio is meaningful on a noisy machine. The in-process SQL time of the same query (and of the
keyset alternative) is measured too. Results: a Markdown table on stdout and JSON under
``bench/results/``.

    .venv/bin/python bench/list_jobs.py                 # 10k and 1M (a few minutes)
    .venv/bin/python bench/list_jobs.py --quick         # smoke run: 2000 rows, 2 s windows
"""

from __future__ import annotations

import argparse
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

import httpx
from fill_jobs import FillResult, check_ulid_encoder, fill_jobs

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LOADGEN = BENCH_DIR / "loadgen.py"
PAGE_LIMIT = 50
SERVER_START_TIMEOUT = 60.0

# --------------------------------------------------------------------------- SQL timing

LIST_SQL = (
    "SELECT id, status, progress, engine, mode, created_at, result_track_id, error_message,"
    " refusal_reason FROM generation_jobs WHERE org_id = ? AND user_id = ?"
    " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
)
KEYSET_SQL = (
    "SELECT id, status, progress, engine, mode, created_at, result_track_id, error_message,"
    " refusal_reason FROM generation_jobs WHERE org_id = ? AND user_id = ?"
    " AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
)


def _median_ms(conn: sqlite3.Connection, sql: str, params: Sequence[Any], budget: float) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 500):
        t0 = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - t0)
        if len(rows) != PAGE_LIMIT:
            raise AssertionError(f"expected {PAGE_LIMIT} rows, got {len(rows)}")
    return statistics.median(times) * 1000


def time_sql(
    db_path: Path, org_id: str, user_id: str, offsets: Sequence[int], budget: float
) -> list[dict[str, Any]]:
    """In-process median time of the app's list query (and the keyset equivalent) per offset."""
    conn = sqlite3.connect(db_path)
    try:
        explain = conn.execute("EXPLAIN QUERY PLAN " + LIST_SQL, (org_id, user_id, 1, 0))
        plan = [r[3] for r in explain]
        out: list[dict[str, Any]] = []
        for offset in offsets:
            offset_ms = _median_ms(conn, LIST_SQL, (org_id, user_id, PAGE_LIMIT, offset), budget)
            keyset_ms: float | None = None
            if offset > 0:
                # The keyset page starts after the last row of the previous page.
                after = conn.execute(LIST_SQL, (org_id, user_id, 1, offset - 1)).fetchone()
                params = (org_id, user_id, after[5], after[0], PAGE_LIMIT)
                keyset_page = conn.execute(KEYSET_SQL, params).fetchall()
                offset_page = conn.execute(LIST_SQL, (org_id, user_id, PAGE_LIMIT, offset))
                if keyset_page != offset_page.fetchall():
                    raise AssertionError(f"keyset and OFFSET pages differ at offset {offset}")
                keyset_ms = _median_ms(conn, KEYSET_SQL, params, budget)
            out.append(
                {"offset": offset, "offset_query_ms": offset_ms, "keyset_query_ms": keyset_ms}
            )
        if out:
            out[0]["plan"] = plan
        return out
    finally:
        conn.close()


# --------------------------------------------------------------------------- processes


class Processes:
    """Subprocesses and temp dirs of the run, all removed by :meth:`close`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dirs: list[Path] = []

    def tempdir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.dirs.append(path)
        return path

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
        for proc in list(self.procs):
            try:
                self.stop(proc)
            except Exception as exc:  # keep cleaning up the rest
                print(f"warning: could not stop pid {proc.pid}: {exc}", file=sys.stderr)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.dirs.clear()


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


def app_env(data_dir: Path, secret: str) -> dict[str, str]:
    """The environment of the app's processes: SQLite and local storage in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICSTUDIO_")}
    env.update(
        MUSICSTUDIO_DATA_DIR=str(data_dir),
        MUSICSTUDIO_SECRET_KEY=secret,
        MUSICSTUDIO_WORKERS="0",
    )
    return env


# --------------------------------------------------------------------------- the bare app


def run_bare_server(port: int, pages_dir: Path) -> None:
    """Serve the saved pages from a one-route FastAPI app, like the real server runs uvicorn."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    pages = {int(p.stem.split("-")[1]): p.read_bytes() for p in pages_dir.glob("page-*.json")}
    first = pages[min(pages)]
    app = FastAPI(title="bare")

    @app.get("/v1/music/{organization_id}/generations")
    async def bare_page(organization_id: str, offset: int = 0) -> Response:
        return Response(content=pages.get(offset, first), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(content=b'{"status":"ok"}', media_type="application/json")

    # Same call as `musicstudio serve` (access log on, h11/asyncio as installed).
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    """One line of the results table."""

    size: int
    endpoint: str
    offset: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    ratio: float | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)


def measure(
    url: str,
    api_key: str,
    *,
    connections: int,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    """One loadgen run in its own process; returns its JSON summary."""
    cmd = [
        sys.executable,
        str(LOADGEN),
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


def verify_real(base: str, api_key: str, fill: FillResult, size: int) -> None:
    """The app reads the filled rows: full first and last pages, in the right order."""
    headers = {"X-API-Key": api_key}
    first = httpx.get(base, params={"limit": PAGE_LIMIT}, headers=headers, timeout=60)
    first.raise_for_status()
    jobs = first.json()["jobs"]
    if len(jobs) != PAGE_LIMIT or jobs[0]["id"] != fill.newest_id:
        raise AssertionError(f"first page is wrong: {len(jobs)} jobs, first {jobs[:1]}")
    if jobs[0]["status"] != "queued" or jobs[2]["status"] != "running":
        raise AssertionError("the newest jobs should be queued, queued, running")
    params = {"limit": PAGE_LIMIT, "offset": size - PAGE_LIMIT}
    last = httpx.get(base, params=params, headers=headers, timeout=60)
    last.raise_for_status()
    jobs = last.json()["jobs"]
    if len(jobs) != PAGE_LIMIT or jobs[-1]["id"] != fill.oldest_id:
        raise AssertionError(f"last page is wrong: {len(jobs)} jobs, last {jobs[-1:]}")
    done = httpx.get(base, params={"limit": 5, "status": "succeeded"}, headers=headers, timeout=60)
    done.raise_for_status()
    if [j["status"] for j in done.json()["jobs"]] != ["succeeded"] * 5:
        raise AssertionError("status filter returned other statuses")


def bench_size(size: int, args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    """Fill, start both servers, measure every offset; returns this size's results."""
    cli = musicstudio_cli()
    data_dir = procs.tempdir(f"musicstudio-bench-{size}-")
    env = app_env(data_dir, secrets.token_urlsafe(32))
    t0 = time.perf_counter()
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    boot = subprocess.run(
        [cli, "admin", "bootstrap", "--json"], env=env, check=True, capture_output=True
    )
    account = json.loads(boot.stdout)
    setup_seconds = time.perf_counter() - t0
    org_id, user_id, api_key = account["organization_id"], account["user_id"], account["api_key"]

    print(f"[{size:,}] filling {size:,} jobs …", file=sys.stderr, flush=True)
    fill = fill_jobs(data_dir / "musicstudio.db", org_id, user_id, size, seed=args.seed + size)
    print(
        f"[{size:,}] filled in {fill.seconds:.1f} s (+ ANALYZE {fill.analyze_seconds:.1f} s),"
        f" db {fill.db_bytes / 1e6:.0f} MB, {fill.statuses}",
        file=sys.stderr,
        flush=True,
    )
    offsets = offsets_for(size)
    sql = time_sql(data_dir / "musicstudio.db", org_id, user_id, offsets, budget=1.0)

    real_port = free_port()
    real_log = data_dir / "real-server.log"
    real = procs.start(
        [cli, "serve", "--host", "127.0.0.1", "--port", str(real_port), "--workers", "0"],
        env,
        real_log,
    )
    real_root = f"http://127.0.0.1:{real_port}"
    wait_ready(f"{real_root}/readyz", real, real_log)
    real_base = f"{real_root}/v1/music/{org_id}/generations"
    verify_real(real_base, api_key, fill, size)

    pages_dir = data_dir / "pages"
    pages_dir.mkdir()
    for offset in offsets:
        page = httpx.get(
            real_base,
            params={"limit": PAGE_LIMIT, "offset": offset},
            headers={"X-API-Key": api_key},
            timeout=60,
        )
        page.raise_for_status()
        (pages_dir / f"page-{offset}.json").write_bytes(page.content)

    bare_port = free_port()
    bare_log = data_dir / "bare-server.log"
    bare = procs.start(
        [sys.executable, __file__, "--bare-server", str(bare_port), "--bare-pages", str(pages_dir)],
        env,
        bare_log,
    )
    bare_root = f"http://127.0.0.1:{bare_port}"
    wait_ready(f"{bare_root}/healthz", bare, bare_log)
    bare_base = f"{bare_root}/v1/music/{org_id}/generations"
    for offset in offsets:
        got = httpx.get(bare_base, params={"limit": PAGE_LIMIT, "offset": offset}, timeout=10)
        if got.content != (pages_dir / f"page-{offset}.json").read_bytes():
            raise AssertionError(f"bare endpoint does not serve the real page at {offset}")

    rows: list[Row] = []
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    pair = (("bare", bare_base), ("real", real_base))
    for round_no in range(args.rounds):
        for offset in offsets:
            # Alternate which side goes first so slow drift in machine load cancels out.
            for endpoint, base in pair if round_no % 2 == 0 else pair[::-1]:
                url = f"{base}?limit={PAGE_LIMIT}&offset={offset}"
                load_before = os.getloadavg()[0]
                result = measure(
                    url,
                    api_key,
                    connections=args.connections,
                    warmup=args.warmup,
                    duration=args.duration,
                )
                result["round"] = round_no + 1
                result["loadavg_1m_before"] = load_before
                result["loadavg_1m_after"] = os.getloadavg()[0]
                runs.setdefault((endpoint, offset), []).append(result)
                print(
                    f"[{size:,}] round {round_no + 1} {endpoint:4} offset {offset:>7,}:"
                    f" {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.2f} ms"
                    f"  p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}",
                    file=sys.stderr,
                    flush=True,
                )
    for offset in offsets:
        for endpoint in ("bare", "real"):
            results = runs[(endpoint, offset)]
            rows.append(
                Row(
                    size=size,
                    endpoint=endpoint,
                    offset=offset,
                    rps=statistics.median(r["rps"] for r in results),
                    p50_ms=statistics.median(r["p50_ms"] for r in results),
                    p99_ms=statistics.median(r["p99_ms"] for r in results),
                    errors=sum(r["errors"] for r in results),
                    requests=sum(r["requests"] for r in results),
                    rounds=results,
                )
            )
        bare_row, real_row = rows[-2], rows[-1]
        if bare_row.rps > 0:
            real_row.ratio = real_row.rps / bare_row.rps

    procs.stop(bare)
    procs.stop(real)
    return {
        "size": size,
        "setup_seconds": setup_seconds,
        "fill": asdict(fill),
        "sql": sql,
        "rows": [asdict(r) for r in rows],
        "page_bytes": {str(o): (pages_dir / f"page-{o}.json").stat().st_size for o in offsets},
    }


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def markdown_table(sizes: list[dict[str, Any]]) -> str:
    """The results table (ratio = real req/s ÷ bare req/s at the same offset)."""
    lines = [
        "| size | endpoint | offset | req/s | p50 ms | p99 ms | errors | real/bare ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for block in sizes:
        for row in block["rows"]:
            lines.append(
                f"| {row['size']:,} | {row['endpoint']} | {row['offset']:,} "
                f"| {_fmt(row['rps'], 0)} | {_fmt(row['p50_ms'], 2)} | {_fmt(row['p99_ms'], 2)} "
                f"| {row['errors']} | {_fmt(row['ratio'], 3)} |"
            )
    return "\n".join(lines)


def sql_table(sizes: list[dict[str, Any]]) -> str:
    """In-process SQLite time of one page: the app's OFFSET query and the keyset equivalent."""
    lines = [
        "| size | offset | OFFSET query ms | keyset query ms |",
        "|---:|---:|---:|---:|",
    ]
    for block in sizes:
        for item in block["sql"]:
            lines.append(
                f"| {block['size']:,} | {item['offset']:,} | {_fmt(item['offset_query_ms'], 3)} "
                f"| {_fmt(item['keyset_query_ms'], 3)} |"
            )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for dist in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "aiosqlite", "h11"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "?"
    for dist in ("uvloop", "httptools"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "not installed"
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
        "--sizes",
        default="10000,1000000",
        help="comma-separated job counts (default 10000,1000000)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2000 jobs, 2 s windows, 0.5 s warm-up"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument(
        "--rounds", type=int, default=2, help="bare/real pairs per offset (median reported)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated rows")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-pages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "2000"
        args.duration = 2.0
        args.warmup = 0.5
        args.rounds = 1
    args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if any(s < PAGE_LIMIT * 2 for s in args.size_list):
        parser.error(f"every size must be at least {PAGE_LIMIT * 2}")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--bare-server``, be the bare endpoint)."""
    args = parse_args(argv)
    if args.bare_server is not None:
        run_bare_server(args.bare_server, args.bare_pages)
        return 0

    # Ctrl-C and SIGTERM both unwind through the finally below (even when started in the
    # background by a shell that set SIGINT to "ignore").
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    check_ulid_encoder()
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    procs = Processes()
    sizes: list[dict[str, Any]] = []
    try:
        for size in args.size_list:
            sizes.append(bench_size(size, args, procs))
    except KeyboardInterrupt:
        print("interrupted: stopping servers and removing temp dirs", file=sys.stderr)
        return 130
    finally:
        procs.close()
    total = time.perf_counter() - started

    report = {
        "benchmark": "list_jobs",
        "started_utc": stamp,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "sizes": args.size_list,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "rounds": args.rounds,
            "page_limit": PAGE_LIMIT,
        },
        "machine": machine_info(),
        "total_seconds": total,
        "sizes": sizes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"list_jobs-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))

    print(markdown_table(sizes))
    print()
    print(sql_table(sizes))
    print()
    for block in sizes:
        fill = block["fill"]
        print(
            f"- {block['size']:,} jobs: filled in {fill['seconds']:.1f} s"
            f" (+ ANALYZE {fill['analyze_seconds']:.1f} s), db {fill['db_bytes'] / 1e6:.0f} MB"
        )
    print(f"- total runtime {total:.0f} s; JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
