"""Profile the list endpoint's first page under load: where a request's CPU time goes.

For each backend: a fresh data dir / database with ``--size`` jobs (as ``bench/list_jobs.py``
fills them), the real server (``musicstudio serve --workers 0``) and the lean reference,
each pinned to the server core; wrk (pinned to the other core) drives the first page with 8
connections while py-spy (on the other core too) samples the server's event-loop thread
without pausing it (``--nonblocking``; ``--blocking`` pauses it per sample for whole stacks
but distorts the timing). ``bench/profile_stacks.py`` sorts the samples into auth, page
query, view building, serialization, access log, Starlette, uvicorn…, and turns sample
counts into CPU microseconds per request with the requests wrk counted meanwhile (py-spy
records running threads only, so this holds when the core is not saturated too).

py-spy is not a project dependency: give its path (``pip install py-spy`` in a scratch
venv)::

    .venv/bin/python bench/list_profile.py --py-spy /tmp/pyspy/bin/py-spy
    .venv/bin/python bench/list_profile.py --py-spy … --backends sqlite --size 10000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fill_jobs import fill_jobs, fill_jobs_postgres
from list_jobs import (
    DEFAULT_ADMIN_URL,
    PAGE_LIMIT,
    SERVERS,
    Processes,
    app_env,
    free_port,
    musicstudio_cli,
    pinned,
    postgres_reachable,
    start_server,
)
from loadgen import run_wrk
from profile_stacks import table, tally
from sqlalchemy.engine import make_url

SAMPLE_RATE = 250  # py-spy samples per second


def profile_server(
    py_spy: str,
    pid: int,
    url: str,
    api_key: str,
    seconds: int,
    out: Path,
    server_cpu: int,
    client_cpu: int,
    blocking: bool,
) -> dict[str, Any]:
    """Load ``url`` with wrk while py-spy samples ``pid``; returns wrk's numbers."""
    result: dict[str, Any] = {}

    def load() -> None:
        result.update(
            run_wrk(
                url,
                [("X-API-Key", api_key)],
                connections=8,
                warmup=0,
                duration=seconds + 2,
                cpu=client_cpu,
            )
        )

    # Warm up first, then sample inside the measured window.
    run_wrk(url, [("X-API-Key", api_key)], connections=8, warmup=0, duration=2, cpu=client_cpu)
    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1)
    record = [py_spy, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE), "--threads"]
    if not blocking:
        record.append("--nonblocking")
    record += ["--format", "raw", "-o", str(out), "--duration", str(seconds)]
    # py-spy runs on the client core: the server's core stays the server's.
    subprocess.run(pinned(record, client_cpu), check=True, capture_output=True)
    loader.join()
    result.pop("wrk_report", None)
    return result


def run_backend(backend: str, args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    cli = musicstudio_cli()
    data_dir = procs.tempdir(f"musicstudio-profile-{backend}-")
    database_url = None
    dsn = ""
    if backend == "postgresql":
        _name, database_url = procs.database()
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    env = app_env(data_dir, secrets.token_urlsafe(32), database_url)
    subprocess.run([cli, "migrate"], env=env, check=True, capture_output=True)
    boot = subprocess.run(
        [cli, "admin", "bootstrap", "--json"], env=env, check=True, capture_output=True
    )
    account = json.loads(boot.stdout)
    org_id, user_id, api_key = account["organization_id"], account["user_id"], account["api_key"]
    db_path = data_dir / "musicstudio.db"
    if backend == "sqlite":
        fill_jobs(db_path, org_id, user_id, args.size, seed=args.size)
    else:
        asyncio.run(fill_jobs_postgres(dsn, org_id, user_id, args.size, seed=args.size))

    path = f"/v1/music/{org_id}/generations?limit={PAGE_LIMIT}&offset=0"
    out: dict[str, Any] = {}
    for kind in ("real", "lean"):
        port = free_port()
        if kind == "real":
            cmd = [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "0"]
            health = "/readyz"
        else:
            cmd = [sys.executable, str(SERVERS), "lean", "--port", str(port), "--user-id", user_id]
            cmd += ["--database-url", database_url or f"sqlite+aiosqlite:///{db_path}"]
            health = "/healthz"
        proc = start_server(procs, kind, pinned(cmd, args.server_cpu), env, data_dir, health, port)
        stacks = args.out / f"stacks-{backend}-{kind}.txt"
        load = profile_server(
            args.py_spy,
            proc.pid,
            f"http://127.0.0.1:{port}{path}",
            api_key,
            args.seconds,
            stacks,
            args.server_cpu,
            args.client_cpu,
            args.blocking,
        )
        # The event loop's thread: SQLite deep pages and the like run elsewhere, not here.
        counts = tally(stacks.read_text().splitlines(), thread="MainThread")
        served = load["rps"] * args.seconds  # requests while py-spy sampled
        out[kind] = {"wrk": load, "samples": counts, "stacks": str(stacks), "requests": served}
        busy = sum(counts.values()) / (SAMPLE_RATE * args.seconds)
        print(
            f"\n### {backend}, {args.size:,} jobs, {kind}: {load['rps']:,.0f} req/s while"
            f" sampled (p50 {load['p50_ms']:.2f} ms), event loop thread busy {busy:.0%}\n"
        )
        print(table(counts, served, SAMPLE_RATE))
        procs.stop(proc)
    procs.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--py-spy", required=True, help="path of the py-spy executable")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=20, help="sampling time per server")
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause the server for each sample (whole stacks, but it distorts the timing)",
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    procs = Processes(args.postgres_url)
    results: dict[str, Any] = {}
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "postgresql" and postgres_reachable(args.postgres_url) is not None:
                print("PostgreSQL is not reachable: skipped", file=sys.stderr)
                continue
            results[backend] = run_backend(backend, args, procs)
    finally:
        procs.close()
    (args.out / "list_profile.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
