"""The ``musicstudio`` command: serve, worker, migrate, admin, generate."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from musicstudio.clock import isoformat_z
from musicstudio.config import get_settings, load_client_settings, log_format
from musicstudio.logs import configure_logging
from musicstudio.services import accounts
from musicstudio.services.context import ServiceContext, build_context

if TYPE_CHECKING:
    from musicstudio.worker.runner import Worker

app = typer.Typer(help="musicstudio: self-hostable music generation.", no_args_is_help=True)
admin_app = typer.Typer(help="Organizations, users and API keys.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
console = Console(stderr=True)

TERMINAL = {"succeeded", "failed", "cancelled", "refused"}


def _logging(level: int = logging.INFO) -> None:
    configure_logging(log_format(), level)


async def _with_context(fn: Any) -> Any:
    ctx = build_context(get_settings())
    try:
        return await fn(ctx)
    finally:
        await ctx.close()


@app.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    from musicstudio.db.migrate import upgrade

    upgrade(get_settings().database_url)
    console.print("database is up to date")


def _print_bootstrap(issued: accounts.IssuedKey) -> None:
    typer.echo(
        "\nA default organization, user and API key were created. "
        "The key is shown only this once:\n"
        f"  MUSICSTUDIO_ORG={issued.organization_id}\n"
        f"  MUSICSTUDIO_USER={issued.user_id}\n"
        f"  MUSICSTUDIO_API_KEY={issued.api_key}\n"
        "More keys: musicstudio admin create-user --org ORG_ID --email EMAIL\n"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes to supervise (0 = API only)")
    ] = None,
) -> None:
    """Run the API, with worker processes supervised beside it."""
    import uvicorn

    from musicstudio.api.app import create_app
    from musicstudio.db.migrate import upgrade
    from musicstudio.worker.supervisor import WorkerSupervisor

    _logging()
    settings = get_settings()
    upgrade(settings.database_url)
    issued = asyncio.run(_with_context(accounts.bootstrap_if_empty))
    if issued is not None:
        _print_bootstrap(issued)
    count = settings.workers if workers is None else workers
    supervisor = WorkerSupervisor(count) if count > 0 else None
    # uvicorn re-raises the signal that stopped it once it has shut down; catch it here so
    # the workers are stopped gracefully and the process exits cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
    if supervisor is not None:
        supervisor.start()
    try:
        # In JSON mode uvicorn's own loggers go through ours (log_config=None).
        uvicorn_logging: dict[str, Any] = {"log_config": None} if log_format() == "json" else {}
        api = create_app(settings)
        if supervisor is not None:
            api.state.metrics.include_workers(supervisor.metrics)
        uvicorn.run(api, host=host, port=port, log_level="info", **uvicorn_logging)
    finally:
        if supervisor is not None:
            supervisor.stop()


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Worker processes to run (each renders one job at a time)")
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port"),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port")] = "127.0.0.1",
    parent_pid: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this process (the supervisor) is gone"),
    ] = None,
) -> None:
    """Run workers: they claim jobs from the database until SIGTERM (any host will do).

    On SIGTERM or SIGINT a worker claims nothing more and lets its job finish for
    MUSICSTUDIO_STOP_SOFT_SECONDS; a job still running then is asked to stop and handed back
    to the queue, and the process exits at most MUSICSTUDIO_STOP_HARD_SECONDS later.
    """
    from musicstudio.worker.metrics import WorkerMetrics
    from musicstudio.worker.runner import Worker

    _logging()
    metrics_address = None if metrics_port is None else (metrics_host, metrics_port)
    if concurrency > 1:
        _supervise_workers(concurrency, metrics_address)
        return
    metrics = WorkerMetrics()
    server = _serve_metrics(metrics.registry, metrics_address)

    async def watch_parent(begin_stop: Callable[[], None]) -> None:
        # A supervisor killed with SIGKILL can't stop us: notice being orphaned instead.
        while parent_pid is not None:
            if os.getppid() != parent_pid:
                console.print("supervisor is gone; stopping")
                begin_stop()
                return
            await asyncio.sleep(1.0)

    async def run(ctx: ServiceContext) -> None:
        stop = asyncio.Event()
        worker = Worker(ctx, metrics=metrics)
        stop_within = ctx.settings.stop_soft_seconds + ctx.settings.stop_hard_seconds

        def begin_stop() -> None:
            if not stop.is_set():  # the first signal starts the clock; later ones change nothing
                stop.set()
                _exit_when_overdue(stop_within, [worker])

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, begin_stop)
        watcher = asyncio.create_task(watch_parent(begin_stop))
        await worker.run(stop)
        watcher.cancel()

    try:
        asyncio.run(_with_context(run))
    finally:
        if server is not None:
            server.shutdown()


def _exit_when_overdue(seconds: float, workers: Sequence[Worker]) -> None:
    """End the process ``seconds`` from now whatever its renders do: a render thread can't be
    interrupted, and the interpreter would wait for it at exit. Jobs were handed back at the
    soft timeout; exit status 1 says a lease was left to expire (the hand-back failed)."""

    def exit_now() -> None:
        held = [w.held_lease.job_id for w in workers if w.held_lease is not None]
        log = logging.getLogger("musicstudio.worker")
        log.warning("stop: %.1f s passed; exiting (leases left to expire: %s)", seconds, held)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1 if held else 0)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def _serve_metrics(registry: Any, address: tuple[str, int] | None) -> Any:
    """Prometheus's text format at ``http://host:port/metrics`` from a thread, if asked for."""
    if address is None:
        return None
    from prometheus_client import start_http_server

    server, _thread = start_http_server(address[1], addr=address[0], registry=registry)
    console.print(f"metrics on http://{address[0]}:{address[1]}/metrics")
    return server


def _supervise_workers(count: int, metrics_address: tuple[str, int] | None) -> None:
    """Keep ``count`` single worker processes alive until SIGTERM or SIGINT."""
    from musicstudio.worker.supervisor import WorkerSupervisor

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stopping.set())
    supervisor = WorkerSupervisor(count)
    server = _serve_metrics(supervisor.metrics.registry(), metrics_address)
    supervisor.start()
    console.print(f"supervising {count} worker processes")
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        if server is not None:
            server.shutdown()
        supervisor.stop()


@admin_app.command("bootstrap")
def admin_bootstrap(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create a new organization with one user and API key."""
    issued = asyncio.run(_with_context(accounts.bootstrap))
    out = {
        "organization_id": issued.organization_id,
        "user_id": issued.user_id,
        "api_key": issued.api_key,
    }
    _emit(out, as_json)


@admin_app.command("create-user")
def admin_create_user(
    org: Annotated[str, typer.Option("--org", help="Organization id (org_...)")],
    email: Annotated[str, typer.Option("--email", help="The user's email")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create a user in an organization, with a first API key."""
    from musicstudio.errors import AppError

    try:
        issued = asyncio.run(_with_context(lambda ctx: accounts.create_user(ctx, org, email)))
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    _emit({"user_id": issued.user_id, "api_key": issued.api_key}, as_json)


@admin_app.command("create-key")
def admin_create_key(
    org: Annotated[str, typer.Option("--org", help="Organization id (org_...)")],
    user: Annotated[str, typer.Option("--user", help="User id (usr_...)")],
    name: Annotated[str, typer.Option("--name", help="A label shown in list-keys")] = "extra",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Issue another API key for a user (rotate: create the new key, then revoke the old)."""
    from musicstudio.errors import AppError

    try:
        issued = asyncio.run(_with_context(lambda ctx: accounts.create_key(ctx, org, user, name)))
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    _emit({"user_id": issued.user_id, "api_key": issued.api_key}, as_json)


@admin_app.command("list-keys")
def admin_list_keys(
    org: Annotated[str, typer.Option("--org", help="Organization id (org_...)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """An organization's API keys, shown by prefix (msk_ and 8 characters), never whole."""
    keys = asyncio.run(_with_context(lambda ctx: accounts.list_keys(ctx, org)))
    rows = [
        {
            "key_id": str(k["id"]),
            "user_id": str(k["user_id"]),
            "prefix": f"msk_{k['display_prefix']}",
            "created_at": isoformat_z(k["created_at"]),
            "revoked_at": isoformat_z(k["revoked_at"]),
        }
        for k in keys
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("key id", "user", "prefix", "created", "revoked")
    for row in rows:
        table.add_row(*(str(row[c] or "") for c in row))
    Console().print(table)


@admin_app.command("revoke-key")
def admin_revoke_key(
    key_id: Annotated[str, typer.Argument(help="Key id (mkey_...) from list-keys")],
) -> None:
    """Revoke an API key at once."""
    from musicstudio.errors import AppError

    try:
        asyncio.run(_with_context(lambda ctx: accounts.revoke_key(ctx, key_id)))
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"revoked {key_id}")


def _emit(out: dict[str, str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(out))
    else:
        for key, value in out.items():
            typer.echo(f"{key}: {value}")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to make")],
    duration: Annotated[int, typer.Option(help="Length in seconds")] = 30,
    engine: Annotated[str, typer.Option(help="Engine key")] = "studio",
    org: Annotated[str | None, typer.Option(help="Organization id (MUSICSTUDIO_ORG)")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to save the audio")] = None,
) -> None:
    """Submit a job to a running service, show its progress, save the audio."""
    client_settings = load_client_settings()
    org_id = org or client_settings.org
    if not client_settings.api_key or not org_id:
        console.print("[red]Set MUSICSTUDIO_API_KEY and MUSICSTUDIO_ORG (or --org).[/red]")
        raise typer.Exit(2)
    base = f"{client_settings.url}/v1/music/{org_id}/generations"
    with httpx.Client(headers={"X-API-Key": client_settings.api_key}, timeout=30) as http:
        created = http.post(
            base, json={"engine": engine, "prompt": prompt, "duration_seconds": duration}
        )
        job = _check(created)
        job = _follow(http, f"{base}/{job['id']}", job)
        if job["status"] != "succeeded":
            reason = job.get("error_message") or job.get("refusal_reason") or job["status"]
            console.print(f"[red]Job {job['id']} {job['status']}: {reason}[/red]")
            raise typer.Exit(1)
        target = out or Path(f"{job['id']}{_suffix(job['track']['mime_type'])}")
        with http.stream("GET", job["playback_url"]) as audio:
            audio.raise_for_status()
            with target.open("wb") as fh:
                for chunk in audio.iter_bytes():
                    fh.write(chunk)
    console.print(f"saved {target} ({job['track']['measured_duration_seconds']:.2f} s)")
    typer.echo(str(target))


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        console.print(f"[red]HTTP {response.status_code}: {message}[/red]")
        raise typer.Exit(1)
    body: dict[str, Any] = response.json()
    return body


def _follow(http: httpx.Client, url: str, job: dict[str, Any]) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"{job['id']} {job['status']}", total=100)
        while job["status"] not in TERMINAL:
            time.sleep(0.5)
            job = _check(http.get(url))
            bar.update(task, completed=job["progress"], description=f"{job['id']} {job['status']}")
    return job


def _suffix(mime_type: str) -> str:
    return {
        "audio/mpeg": ".mp3",
        "audio/flac": ".flac",
        "audio/ogg": ".ogg",
        "audio/wav": ".wav",
    }.get(mime_type.split(";")[0], ".bin")


def main() -> None:
    app()
