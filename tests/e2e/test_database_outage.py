"""PostgreSQL restarts under a load of creates and polls.

The promise: requests during the outage get 503 SERVICE_UNAVAILABLE in the error envelope
(no tracebacks, no hangs), the service is back within 5 s of the database, the workers
reconnect, and no accepted job is lost. Real processes: an API-only ``serve`` and two
``worker`` processes on a PostgreSQL cluster of the test's own, which it kills
(``pg_ctl stop -m immediate``, a crash) and starts again on the same port.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from musicstudio.wakeup import APPLICATION_NAME as LISTENER_NAME
from tests.helpers import assert_error, job_body
from tests.postgres import ThrowawayCluster, throwaway_cluster
from tests.processes import (
    answers,
    cli_env,
    free_port,
    log_tail,
    start_cli,
    stop,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CLIENT_TIMEOUT = 10.0  # seconds; a request without an answer by then counts as hung
RECOVERY_BOUND = 5.0  # the promise: back within 5 s of the database accepting connections
OUTAGE_SECONDS = 2.5  # how long the database stays down
LOAD_CLIENTS = 3
PACE = 0.4  # seconds between a load client's rounds: keeps the number of jobs to drain small
WORKERS = 2
SUCCESS = {"create": 202, "poll": 200, "list": 200}
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "refused"})
_FIRST_RUN = re.compile(
    r"MUSICSTUDIO_ORG=(org_\w+)\s+MUSICSTUDIO_USER=\S+\s+MUSICSTUDIO_API_KEY=(msk_\w+)"
)


@dataclass(frozen=True)
class Exchange:
    """One request of the load and what came back (``response`` None: no answer at all)."""

    kind: str  # create | poll | list
    sent: float  # time.monotonic()
    answered: float
    response: httpx.Response | None
    failure: str | None

    @property
    def succeeded(self) -> bool:
        return self.response is not None and self.response.status_code == SUCCESS[self.kind]

    def describe(self) -> str:
        if self.response is None:
            return (
                f"{self.kind}: no response after {self.answered - self.sent:.1f}s: {self.failure}"
            )
        return f"{self.kind}: {self.response.status_code} {self.response.text[:300]}"


class Load:
    """A few clients creating short jobs and polling them until stopped; records everything."""

    def __init__(self, org_url: str, headers: dict[str, str]) -> None:
        self.org_url = org_url
        self.headers = headers
        self.exchanges: list[Exchange] = []
        self.accepted: list[str] = []  # ids of every job that was answered 202
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(LOAD_CLIENTS)
        ]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.org_url, headers=self.headers, timeout=CLIENT_TIMEOUT)

    def send(self, http: httpx.Client, kind: str, method: str, url: str, **kw: Any) -> Exchange:
        sent = time.monotonic()
        response: httpx.Response | None = None
        failure: str | None = None
        try:
            response = http.request(method, url, **kw)
        except httpx.HTTPError as exc:  # a timeout or a refused connection: both fail the test
            failure = repr(exc)
        exchange = Exchange(kind, sent, time.monotonic(), response, failure)
        with self._lock:
            self.exchanges.append(exchange)
            if kind == "create" and exchange.succeeded:
                assert response is not None
                self.accepted.append(response.json()["id"])
        return exchange

    def create_and_poll(self, http: httpx.Client) -> Exchange | None:
        """Create a job and read it back: the read's exchange if both succeeded, else None."""
        body = job_body(prompt="recovery probe", duration_seconds=1)
        created = self.send(http, "create", "POST", "/generations", json=body)
        if not created.succeeded:
            return None
        assert created.response is not None
        polled = self.send(http, "poll", "GET", f"/generations/{created.response.json()['id']}")
        return polled if polled.succeeded else None

    def _client(self, n: int) -> None:
        with self.client() as http:
            mine: str | None = None
            rounds = 0
            while not self._stop.is_set():
                body = job_body(prompt=f"outage load {n}.{rounds}", duration_seconds=1 + rounds % 2)
                created = self.send(http, "create", "POST", "/generations", json=body)
                if created.succeeded:
                    assert created.response is not None
                    mine = created.response.json()["id"]
                if mine is not None:  # still polled while creates fail
                    self.send(http, "poll", "GET", f"/generations/{mine}")
                self.send(http, "list", "GET", "/generations", params={"limit": 5})
                rounds += 1
                self._stop.wait(PACE)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.ident is None:  # never started
                continue
            thread.join(timeout=CLIENT_TIMEOUT * 3)
            assert not thread.is_alive(), f"{thread.name} is stuck"

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)


def _unavailable_kinds(exchanges: list[Exchange], since: float) -> set[str]:
    return {
        e.kind
        for e in exchanges
        if e.sent >= since and e.response is not None and e.response.status_code == 503
    }


def _listening_workers(cluster: ThrowawayCluster) -> int:
    """Workers' LISTEN connections open on the server now (named by ``wakeup.py``)."""

    async def count() -> int:
        conn = await asyncpg.connect(cluster.admin_url, timeout=5)
        try:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            return int(await conn.fetchval(sql, LISTENER_NAME))
        finally:
            await conn.close()

    return asyncio.run(count())


def _first_run(api: subprocess.Popen[bytes], log: Path) -> re.Match[str] | None:
    """The organization and key ``serve`` printed on its first run, once it has."""
    assert api.poll() is None, f"the API exited:\n{log_tail(log)}"
    return _FIRST_RUN.search(log.read_text(errors="replace"))


def _finished(http: httpx.Client, job_ids: list[str]) -> dict[str, str] | None:
    """Every job's status once all are terminal; None while some are not."""
    statuses = {}
    for job_id in job_ids:
        response = http.get(f"/generations/{job_id}")
        assert response.status_code == 200, f"accepted job {job_id}: {response.text}"
        statuses[job_id] = response.json()["status"]
    return statuses if set(statuses.values()) <= TERMINAL else None


def test_a_database_restart_under_load_costs_503s_only_and_no_jobs(tmp_path: Path) -> None:
    began = time.monotonic()
    with throwaway_cluster() as cluster:
        database_url = cluster.admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        env = cli_env(
            tmp_path / "data",  # shared by every process: local-disk storage
            MUSICSTUDIO_DATABASE_URL=database_url,
            MUSICSTUDIO_SECRET_KEY="o" * 32,
            MUSICSTUDIO_POLL_SECONDS="0.5",
            # A completion that failed during the outage leaves its job running until the
            # lease expires and a rescue re-queues it: keep that within the test's minute.
            MUSICSTUDIO_LEASE_SECONDS="10",
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api_log = tmp_path / "api.log"
        worker_logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
        # ``serve`` migrates the empty database and prints the first-run key.
        api = start_cli(["serve", "--workers", "0", "--port", str(port)], env, api_log)
        processes: list[tuple[subprocess.Popen[bytes], Path]] = [(api, api_log)]

        def logs() -> str:
            return "".join(f"\n--- {log.name}:\n{log_tail(log)}" for _, log in processes)

        load: Load | None = None
        try:
            first_run = wait_for(lambda: _first_run(api, api_log), 90, "the first-run key")
            org_id, api_key = first_run.groups()
            processes += [(start_cli(["worker"], env, log), log) for log in worker_logs]
            load = Load(f"{base}/v1/music/{org_id}", {"X-API-Key": api_key})
            wait_for(lambda: answers(f"{base}/healthz"), 60, "the API to answer")
            wait_for(lambda: _listening_workers(cluster) == WORKERS, 60, "workers to LISTEN")
            load.start()
            load_began = time.monotonic()
            wait_for(lambda: len(load.accepted) >= 2 * LOAD_CLIENTS, 30, "the load to run")

            # The outage: a crash-like stop, a few seconds down, a start on the same port.
            outage_began = time.monotonic()
            cluster.stop("immediate")
            wait_for(
                lambda: (
                    time.monotonic() - outage_began >= OUTAGE_SECONDS
                    and _unavailable_kinds(load.snapshot(), outage_began) == set(SUCCESS)
                ),
                30,
                f"503s to creates, polls and lists while the database is down{logs()}",
            )
            cluster.start(wait=False)
            wait_for(cluster.is_ready, 60, "PostgreSQL to accept connections", every=0.05)
            ready_at = time.monotonic()

            # Back within the bound: the first create and poll of one job that both succeed.
            with load.client() as http:
                probe = wait_for(
                    lambda: load.create_and_poll(http),
                    RECOVERY_BOUND + 3 * CLIENT_TIMEOUT,  # fails below with the time measured
                    f"a create and a poll to succeed after the restart{logs()}",
                    every=0.05,
                )
            recovered_at = probe.answered
            recovery = recovered_at - ready_at

            # The load goes on on the recovered service, then stops.
            wait_for(
                lambda: sum(e.succeeded for e in load.snapshot() if e.sent > recovered_at) >= 10,
                30,
                "the load to run on after recovery",
            )
            load.stop()
            load_stopped = time.monotonic()

            with load.client() as http:
                statuses = wait_for(
                    lambda: _finished(http, load.accepted),
                    60,
                    f"every accepted job to finish{logs()}",
                    every=0.5,
                )
            drained = time.monotonic()
            # The restart closed every old connection: these are the workers' new LISTENs.
            wait_for(lambda: _listening_workers(cluster) == WORKERS, 20, "workers to LISTEN again")
            alive = [proc.poll() is None for proc, _ in processes]
        finally:
            if load is not None:
                load.stop()
            for proc, _ in reversed(processes):
                stop(proc)
        exchanges = load.snapshot()
        api_text = api_log.read_text(errors="replace")
        worker_texts = [log.read_text(errors="replace") for log in worker_logs]

    print(
        f"\noutage: set up in {load_began - began:.1f}s; {len(exchanges)} requests, "
        f"{len(load.accepted)} jobs accepted; database "
        f"down {ready_at - outage_began:.2f}s; service back {recovery:.2f}s after pg_isready; "
        f"slowest answer {max(e.answered - e.sent for e in exchanges):.2f}s; "
        f"drained {drained - load_stopped:.1f}s after the load; "
        f"total {time.monotonic() - began:.1f}s"
    )
    # Same processes throughout: none exited, and no worker started twice.
    assert alive == [True] * len(processes), f"a process died during the outage{logs()}"
    assert [text.count(" started") for text in worker_texts] == [1] * WORKERS

    # No hangs, no transport errors, and the outage's failures are 503s in the envelope.
    hung = [e.describe() for e in exchanges if e.response is None]
    assert not hung, f"requests without an answer: {hung[:5]}"
    for e in exchanges:
        assert e.response is not None
        assert e.succeeded or e.response.status_code == 503, e.describe()
        assert "Traceback" not in e.response.text, e.describe()
        if not e.succeeded:
            assert_error(e.response, 503, "SERVICE_UNAVAILABLE")
            assert e.response.headers.get("retry-after") == "1"
    assert _unavailable_kinds(exchanges, outage_began) == set(SUCCESS), "the outage was seen"
    # Outside the outage everything succeeds: nothing answered before it failed, and
    # nothing sent after recovery failed (no dead pooled connection handed out later).
    before = [e.describe() for e in exchanges if e.answered < outage_began and not e.succeeded]
    after = [e.describe() for e in exchanges if e.sent > recovered_at and not e.succeeded]
    assert not before and not after, (before[:5], after[:5])
    assert "unhandled error" not in api_text, "no request became a 500"
    assert recovery <= RECOVERY_BOUND, f"service back {recovery:.2f}s after the database"

    # Every job answered 202 exists and was rendered once the workers reconnected.
    assert sorted(statuses) == sorted(load.accepted)
    assert all(status == "succeeded" for status in statuses.values()), statuses
