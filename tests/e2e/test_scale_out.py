"""Scale-out: two API processes and three worker processes on PostgreSQL and SeaweedFS.

200 short jobs go in through both APIs (some through both at once, some replayed through
the other API with the same Idempotency-Key); every job must succeed exactly once, every
worker must take some, and every job's audio must be fetchable through either API from
presigned S3 URLs. Each process has a data dir of its own: nothing is shared through local
disk, only through the database and the bucket.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import soundfile

from musicstudio.db.database import driver_dsn
from tests.helpers import metric_samples
from tests.postgres import throwaway_database
from tests.processes import answers, cli_env, free_port, log_tail, run_cli, start_cli
from tests.seaweed import SeaweedS3, seaweed_s3

pytestmark = pytest.mark.e2e

JOBS = 200
RACED = 10  # jobs 0..9 are posted through both APIs at once, with the same Idempotency-Key
REPLAYED = range(RACED, RACED + 10)  # re-posted through the other API once created
WORKERS = 3
DURATION = 2  # seconds; the studio engine accepts 1..N, 2 still has a bar of music
PREFIX = "scale-out"
START_SECONDS = 90
FINISH_SECONDS = 180
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "refused"})
CLAIM = re.compile(r"job (mgen_\w+) attempt (\d+) claimed by ([^\s]+)")
DECODED = 5  # MP3s decoded with soundfile; the rest are checked by type and size


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    port: int  # the API's port, or the worker's metrics port


class Cluster:
    """The processes of the test, with their logs for failure messages."""

    def __init__(self, root: Path, env: Callable[[Path], dict[str, str]]) -> None:
        self.root = root
        self.env = env
        self.procs: list[Proc] = []

    def start(self, name: str, args: list[str], port: int) -> Proc:
        data_dir = self.root / name / "data"
        log = self.root / name / "process.log"
        data_dir.mkdir(parents=True)
        proc = Proc(name, start_cli(args, self.env(data_dir), log), log, data_dir, port)
        self.procs.append(proc)
        return proc

    def of(self, kind: str) -> list[Proc]:
        return [p for p in self.procs if p.name.startswith(kind)]

    def tails(self, lines: int = 30) -> str:
        return "".join(
            f"\n--- {p.name} (exit {p.popen.poll()}), last {lines} lines of {p.log}:\n"
            f"{log_tail(p.log, lines)}\n"
            for p in self.procs
        )

    def check_alive(self) -> None:
        dead = [p.name for p in self.procs if p.popen.poll() is not None]
        assert not dead, f"{', '.join(dead)} exited early{self.tails()}"

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``check`` until truthy; fail at once if a process died, with the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}{self.tails()}")

    def stop_all(self, timeout: float = 30) -> dict[str, int | None]:
        """SIGTERM every process at once (exactly one signal each), then reap them."""
        for p in self.procs:
            if p.popen.poll() is None:
                p.popen.terminate()
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for p in self.procs:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                codes[p.name] = p.popen.returncode
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
                codes[p.name] = None  # had to be killed
        return codes


def test_two_apis_and_three_workers_finish_200_jobs_exactly_once(tmp_path: Path) -> None:
    phases: dict[str, float] = {}
    began = time.monotonic()
    with (
        throwaway_database() as database_url,
        seaweed_s3(tmp_path / "seaweed") as s3,
    ):
        shared = {
            "MUSICSTUDIO_DATABASE_URL": database_url,
            "MUSICSTUDIO_SECRET_KEY": "s" * 32,
            "MUSICSTUDIO_STORAGE_URL": s3.storage_url(PREFIX),
            "MUSICSTUDIO_POLL_SECONDS": "5",  # NOTIFY wakes idle workers; this is a fallback
            **s3.env(),
        }

        def env(data_dir: Path) -> dict[str, str]:
            # Only the server's credentials: none of the host's AWS settings leak in.
            base = {k: v for k, v in cli_env(data_dir).items() if not k.startswith("AWS_")}
            return {**base, **shared}

        admin_dir = tmp_path / "admin" / "data"
        issued = json.loads(run_cli(["admin", "bootstrap", "--json"], env(admin_dir)))
        org = issued["organization_id"]
        cluster = Cluster(tmp_path, env)
        try:
            for name in ("api-a", "api-b"):
                port = free_port()
                cluster.start(name, ["serve", "--workers", "0", "--port", str(port)], port)
            for n in range(1, WORKERS + 1):
                port = free_port()
                cluster.start(f"worker-{n}", ["worker", "--metrics-port", str(port)], port)
            apis, workers = cluster.of("api"), cluster.of("worker")
            bases = [f"http://127.0.0.1:{api.port}" for api in apis]
            for base in bases:
                cluster.wait_for(lambda b=base: answers(f"{b}/healthz"), START_SECONDS, base)
            for worker in workers:
                cluster.wait_for(
                    lambda w=worker: re.search(r"worker \S+ started", w.log.read_text()),
                    START_SECONDS,
                    f"{worker.name} to start",
                )
            phases["start"] = time.monotonic() - began
            for base in bases:
                ready = httpx.get(f"{base}/readyz", timeout=10)
                assert ready.status_code == 200, f"{base}/readyz: {ready.text}{cluster.tails()}"
                assert ready.json() == {"status": "ready", "database": "ok", "storage": "ok"}

            headers = {"X-API-Key": issued["api_key"]}
            clients = [
                httpx.Client(base_url=f"{base}/v1/music/{org}", headers=headers, timeout=30)
                for base in bases
            ]
            try:
                ids = _submit(clients, cluster)
                phases["submit"] = time.monotonic() - began
                _wait_until_terminal(clients, cluster, database_url)
                phases["process"] = time.monotonic() - began
                _check_lists(clients, ids)
                tracks = _check_playback(clients, ids, s3, org)
                phases["playback"] = time.monotonic() - began
                for base in bases:
                    ready = httpx.get(f"{base}/readyz", timeout=10)
                    assert ready.status_code == 200 and ready.json()["status"] == "ready"
                    queue = metric_samples(httpx.get(f"{base}/metrics", timeout=10).text)
                    for status in ("queued", "running"):
                        assert queue[("musicstudio_jobs", (("status", status),))] == 0
                    assert queue[("musicstudio_queue_depth", ())] == 0
            finally:
                for client in clients:
                    client.close()
            worker_samples = {
                w.name: metric_samples(httpx.get(f"http://127.0.0.1:{w.port}/metrics").text)
                for w in workers
            }
        finally:
            exit_codes = cluster.stop_all()
        phases["stop"] = time.monotonic() - began
        rows = asyncio.run(_database_rows(database_url))
        _check_database(rows, ids, tracks)
        _check_bucket(s3, org, set(tracks.values()))

    for api in apis:
        log = api.log.read_text()
        assert "claimed" not in log, f"{api.name} rendered a job:\n{log_tail(api.log)}"
        assert "Traceback" not in log, f"{api.name} logged an error:\n{log_tail(api.log, 80)}"
    claims_by_worker = _check_worker_logs(workers, ids)
    for worker in workers:
        samples = worker_samples[worker.name]
        took = claims_by_worker[worker.name]
        succeeded = (("outcome", "succeeded"),)
        assert samples[("musicstudio_worker_attempts_total", succeeded)] == took, worker.name
        assert samples[("musicstudio_job_claim_latency_seconds_count", ())] == took, worker.name
        other = {
            labels: value
            for (name, labels), value in samples.items()
            if name == "musicstudio_worker_attempts_total" and labels != succeeded and value
        }
        assert not other, f"{worker.name} had attempts that did not succeed: {other}"
    for proc in cluster.procs:
        stored = [p for p in proc.data_dir.rglob("*") if p.suffix in (".mp3", ".mid", ".wav")]
        assert not stored, f"{proc.name} kept audio on local disk: {stored[:3]}"
    assert all(code == 0 for code in exit_codes.values()), f"unclean exits: {exit_codes}"
    print(f"\nscale-out phases (s since start): {phases}; jobs per worker: {claims_by_worker}")


def _body(n: int) -> dict[str, Any]:
    return {
        "engine": "studio",
        "prompt": f"short lofi loop number {n}",
        "duration_seconds": DURATION,
        "seed": n,
    }


def _post(client: httpx.Client, n: int) -> dict[str, Any]:
    created = client.post(
        "/generations", json=_body(n), headers={"Idempotency-Key": f"scale-out-{n}"}
    )
    assert created.status_code == 202, f"job {n} via {client.base_url}: {created.text}"
    job: dict[str, Any] = created.json()
    return job


def _submit(clients: list[httpx.Client], cluster: Cluster) -> list[str]:
    """Post every job (alternating APIs; the raced ones through both); their ids in order."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [
            [pool.submit(_post, client, n) for client in clients]
            if n < RACED
            else [pool.submit(_post, clients[n % 2], n)]
            for n in range(JOBS)
        ]
        created = [[f.result() for f in group] for group in futures]
    for n, group in enumerate(created[:RACED]):
        assert len({job["id"] for job in group}) == 1, f"job {n} raced into two jobs: {group}"
    ids = [group[0]["id"] for group in created]
    assert len(set(ids)) == JOBS, "every Idempotency-Key made one job"
    refused = [job for group in created for job in group if job["status"] == "refused"]
    assert not refused, f"the content policy refused test prompts: {refused[:3]}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        # The replay answers with the job as it is now (it may have finished already).
        replays = list(pool.map(lambda n: _post(clients[(n + 1) % 2], n), REPLAYED))
    for n, replay in zip(REPLAYED, replays, strict=True):
        assert replay["id"] == ids[n], f"replay of job {n} through the other API: {replay}"
    cluster.check_alive()
    return ids


def _wait_until_terminal(clients: list[httpx.Client], cluster: Cluster, database_url: str) -> None:
    """Until neither API lists a queued or running job (two requests per poll)."""
    polls = iter(range(1_000_000))

    def nothing_pending() -> bool:
        client = clients[next(polls) % 2]
        for status in ("queued", "running"):
            page = client.get("/generations", params={"status": status, "limit": 1})
            assert page.status_code == 200, page.text
            if page.json()["jobs"]:
                return False
        return True

    try:
        cluster.wait_for(nothing_pending, FINISH_SECONDS, f"{JOBS} jobs to finish")
    except AssertionError as exc:
        rows = asyncio.run(_database_rows(database_url))
        counts = Counter((row["status"], row["attempt"]) for row in rows["jobs"])
        raise AssertionError(f"jobs by (status, attempt): {dict(counts)}\n{exc}") from None


def _pages(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    while True:
        page = client.get("/generations", params={**params, "limit": 100, "offset": len(jobs)})
        assert page.status_code == 200, page.text
        batch = page.json()["jobs"]
        jobs += batch
        if len(batch) < 100:
            return jobs


def _check_lists(clients: list[httpx.Client], ids: list[str]) -> None:
    """Both APIs list the same 200 jobs, all succeeded, none twice."""
    for client in clients:
        everything = _pages(client)
        assert len(everything) == JOBS, f"{client.base_url} lists {len(everything)} jobs"
        statuses = Counter(job["status"] for job in everything)
        failed = [job for job in everything if job["status"] != "succeeded"]
        assert statuses == {"succeeded": JOBS}, f"{dict(statuses)}; e.g. {failed[:3]}"
        succeeded = _pages(client, status="succeeded")
        assert sorted(job["id"] for job in succeeded) == sorted(ids)


def _fetch_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    got = client.get(f"/generations/{job_id}")
    assert got.status_code == 200, f"{job_id} via {client.base_url}: {got.text}"
    job: dict[str, Any] = got.json()
    return job


def _download(url: str) -> bytes:
    audio = httpx.get(url, timeout=30)
    assert audio.status_code == 200, f"{url}: HTTP {audio.status_code} {audio.text[:300]}"
    assert audio.headers["content-type"] == "audio/mpeg", audio.headers
    assert len(audio.content) > 1000, f"{url}: only {len(audio.content)} bytes"
    return audio.content


def _check_playback(
    clients: list[httpx.Client], ids: list[str], s3: SeaweedS3, org: str
) -> dict[str, str]:
    """Every job through each API: a freshly presigned S3 URL that downloads its MP3.

    Returns each job's track id.
    """
    signed_after = datetime.now(UTC).replace(microsecond=0)

    def check(job_id: str) -> tuple[str, bytes]:
        views = [_fetch_job(client, job_id) for client in clients]
        track_id = views[0]["result_track_id"]
        bodies = []
        for api, view in zip("AB", views, strict=True):
            assert view["status"] == "succeeded", f"{job_id} via API {api}: {view}"
            assert view["result_track_id"] == track_id and view["track"]["id"] == track_id
            assert view["track"]["mime_type"] == "audio/mpeg", view["track"]
            assert abs(view["track"]["measured_duration_seconds"] - DURATION) < 0.25, view
            url = view["playback_url"]
            assert view["track"]["playback_url"] == url
            _check_presigned(url, s3, f"{PREFIX}/tracks/{org}/{track_id}.mp3", signed_after)
            bodies.append(_download(url))
        assert bodies[0] == bodies[1], f"{job_id}: the two APIs' URLs gave different audio"
        return track_id, bodies[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, ids))
    for audio in [body for _, body in results[:DECODED]]:
        samples, rate = soundfile.read(io.BytesIO(audio))
        assert abs(len(samples) / rate - DURATION) < 0.25, f"decoded {len(samples) / rate} s"
    # Seeking works on the presigned URL too.
    view = _fetch_job(clients[1], ids[0])
    part = httpx.get(view["playback_url"], headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and part.content == results[0][1][:100], part.headers
    return {job_id: track_id for job_id, (track_id, _) in zip(ids, results, strict=True)}


def _check_presigned(url: str, s3: SeaweedS3, key: str, signed_after: datetime) -> None:
    """A SigV4 GET on the S3 server itself (not the API), signed just now."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3.endpoint_url, f"not on the S3 host: {url}"
    assert parts.path == f"/{s3.bucket}/{key}", url
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Signature"], url
    assert query["X-Amz-Credential"].startswith(f"{s3.access_key}/"), url
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert signed_after <= signed_at <= datetime.now(UTC), f"not signed on this read: {url}"
    assert int(query["X-Amz-Expires"]) >= 300 + DURATION, url


async def _database_rows(database_url: str) -> dict[str, list[asyncpg.Record]]:
    conn = await asyncpg.connect(driver_dsn(database_url), timeout=10)
    try:
        return {
            "jobs": await conn.fetch(
                "SELECT id, status, attempt, result_track_id FROM generation_jobs"
            ),
            "tracks": await conn.fetch("SELECT id, job_id, storage_key FROM tracks"),
        }
    finally:
        await conn.close()


def _check_database(
    rows: dict[str, list[asyncpg.Record]], ids: list[str], tracks: dict[str, str]
) -> None:
    """Exactly once, as the database has it: 200 jobs, each one attempt and one track."""
    jobs = rows["jobs"]
    assert sorted(row["id"] for row in jobs) == sorted(ids), "no job more, none less"
    counts = Counter((row["status"], row["attempt"]) for row in jobs)
    assert counts == {("succeeded", 1): JOBS}, f"jobs by (status, attempt): {dict(counts)}"
    assert {row["id"]: row["result_track_id"] for row in jobs} == tracks
    track_rows = rows["tracks"]
    assert len(track_rows) == JOBS, f"{len(track_rows)} tracks for {JOBS} jobs"
    assert {row["job_id"]: row["id"] for row in track_rows} == tracks


def _check_bucket(s3: SeaweedS3, org: str, track_ids: set[str]) -> None:
    """Every object in the bucket belongs to one of the tracks: no orphaned uploads."""
    found: set[str] = set()
    masters = 0
    for key in _object_keys(s3, f"{PREFIX}/tracks/"):
        rest = key.removeprefix(f"{PREFIX}/tracks/{org}/")
        assert rest != key, f"object outside the organization's prefix: {key}"
        found.add(rest.split("/")[0].split(".")[0])
        masters += rest.endswith(".mp3") and "/" not in rest
    assert found == track_ids, f"objects of unknown tracks: {sorted(found - track_ids)[:5]}"
    assert masters == JOBS


def _object_keys(s3: SeaweedS3, prefix: str) -> Iterator[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            yield item["Key"]


def _check_worker_logs(workers: list[Proc], ids: list[str]) -> dict[str, int]:
    """Each job claimed once, at attempt 1, by one worker; every worker took some."""
    claims: list[tuple[str, str]] = []
    per_worker: dict[str, int] = {}
    for worker in workers:
        log = worker.log.read_text()
        assert "Traceback" not in log, f"{worker.name} logged an error:\n{log_tail(worker.log, 80)}"
        found = CLAIM.findall(log)
        owners = {owner for _, _, owner in found}
        assert len(owners) <= 1, f"{worker.name} is one process, one worker id: {owners}"
        claims += [(job, attempt) for job, attempt, _ in found]
        per_worker[worker.name] = len(found)
    assert Counter(attempt for _, attempt in claims) == {"1": JOBS}, "one attempt per job"
    assert sorted(job for job, _ in claims) == sorted(ids), "each job claimed exactly once"
    idle = [name for name, count in per_worker.items() if count == 0]
    assert not idle, f"workers that took no job: {idle} (jobs per worker: {per_worker})"
    return per_worker
