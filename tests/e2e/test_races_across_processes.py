"""Races between two real API processes: idempotent creates and the shared rate limit.

Two ``musicstudio serve --workers 0`` processes share one database (SQLite file or
PostgreSQL) and one Redis. No worker runs, so a created job stays queued and each request's
outcome is the API's alone.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from musicstudio.config import Settings
from musicstudio.services import accounts
from musicstudio.services.context import build_context
from tests.conftest import make_settings
from tests.helpers import assert_error, job_body
from tests.postgres import throwaway_database
from tests.processes import answers, cli_env, free_port, start_cli, stop, wait_for
from tests.redis_server import redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RACERS = 50
BURST = 100  # per key, shared by both processes; refills one token a minute


@dataclass(frozen=True)
class Account:
    org: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


@dataclass
class Deployment:
    bases: list[str]  # one per API process
    settings: Settings  # the processes' database and secret

    def account(self, org: str | None = None) -> Account:
        """A new user with a key: in ``org``, or in a new organization (issued in-process:
        a CLI run per account would cost a second of start-up each)."""

        async def issue() -> accounts.IssuedKey:
            ctx = build_context(self.settings)
            try:
                if org is None:
                    return await accounts.bootstrap(ctx)
                return await accounts.create_user(ctx, org, "u@example.com")
            finally:
                await ctx.close()

        issued = asyncio.run(issue())
        return Account(issued.organization_id, issued.api_key)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_template: Path,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"races-{request.param}")
    with ExitStack() as stack:
        secret = "r" * 32
        extra = {
            "MUSICSTUDIO_SECRET_KEY": secret,
            "MUSICSTUDIO_REDIS_URL": redis_url(),
            "MUSICSTUDIO_RATE_LIMIT_BURST": str(BURST),
            "MUSICSTUDIO_RATE_LIMIT_PER_MINUTE": "1",
        }
        # One data dir: on SQLite it holds the shared database file.
        data_dir = root / "data"
        settings = make_settings(data_dir, secret_key=secret.encode())
        if request.param == "postgresql":
            url = stack.enter_context(throwaway_database())
            extra["MUSICSTUDIO_DATABASE_URL"] = url
            settings = replace(settings, database_url=url)
        else:
            shutil.copy(migrated_template, data_dir / "musicstudio.db")
        env = cli_env(data_dir, **extra)
        procs, bases = [], []
        for name in ("a", "b"):
            port = free_port()
            proc = start_cli(
                ["serve", "--workers", "0", "--port", str(port)], env, root / f"api-{name}.log"
            )
            stack.callback(stop, proc)
            procs.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_for(lambda base=base: answers(f"{base}/healthz"), 60, f"the API at {base}")
        yield Deployment(bases, settings)
        assert all(p.poll() is None for p in procs), "an API process died during the tests"


def _post_at_once(
    deployment: Deployment, account: Account, count: int, body: dict[str, object], key: str
) -> list[httpx.Response]:
    """``count`` creates released together, alternating between the two processes."""
    gate = threading.Barrier(count)
    headers = {**account.headers, "Idempotency-Key": key}

    def post(i: int) -> httpx.Response:
        url = f"{deployment.bases[i % 2]}/v1/music/{account.org}/generations"
        with httpx.Client(timeout=30) as http:
            gate.wait()
            return http.post(url, json=body, headers=headers)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(post, range(count)))


def _jobs_of(deployment: Deployment, account: Account) -> list[str]:
    url = f"{deployment.bases[0]}/v1/music/{account.org}/generations?limit=100"
    return [job["id"] for job in httpx.get(url, headers=account.headers).json()["jobs"]]


def test_fifty_concurrent_creates_with_one_key_make_exactly_one_job(
    deployment: Deployment,
) -> None:
    alice = deployment.account()
    responses = _post_at_once(deployment, alice, RACERS, job_body(), "race-1")
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {202, 409}, statuses
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "CONFLICT")
    job_ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(job_ids) == 1 and statuses[202] >= 1
    assert _jobs_of(deployment, alice) == list(job_ids), "exactly one job exists"

    (job_id,) = job_ids
    replay = httpx.post(
        f"{deployment.bases[1]}/v1/music/{alice.org}/generations",
        json=job_body(),
        headers={**alice.headers, "Idempotency-Key": "race-1"},
    )
    assert replay.status_code == 202 and replay.json()["id"] == job_id
    reused = httpx.post(
        f"{deployment.bases[0]}/v1/music/{alice.org}/generations",
        json=job_body(prompt="something else entirely"),
        headers={**alice.headers, "Idempotency-Key": "race-1"},
    )
    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    assert _jobs_of(deployment, alice) == [job_id]

    # The key is the caller's: another user, or a user of another organization, races alone.
    for other in (deployment.account(alice.org), deployment.account()):
        theirs = _post_at_once(deployment, other, 10, job_body(), "race-1")
        their_ids = {r.json()["id"] for r in theirs if r.status_code == 202}
        assert len(their_ids) == 1 and job_id not in their_ids
        assert _jobs_of(deployment, other) == list(their_ids)


def test_the_rate_limit_is_one_bucket_per_key_across_processes(deployment: Deployment) -> None:
    bob = deployment.account()
    served: Counter[tuple[int, int]] = Counter()
    with httpx.Client(timeout=30) as http:
        for i in range(BURST + 40):
            response = http.get(
                f"{deployment.bases[i % 2]}/v1/music/{bob.org}/engines", headers=bob.headers
            )
            served[(i % 2, response.status_code)] += 1
            if response.status_code == 429:
                assert_error(response, 429, "RATE_LIMITED")
                assert int(response.headers["retry-after"]) >= 1
    allowed = served[(0, 200)] + served[(1, 200)]
    # One process alone would allow BURST; both share it (plus at most one refill a minute).
    assert BURST <= allowed <= BURST + 1, served
    assert served[(0, 429)] and served[(1, 429)], "both processes refuse once it is spent"
