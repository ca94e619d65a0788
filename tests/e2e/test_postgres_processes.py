"""On PostgreSQL: an API-only process and a separate multi-process worker finish every job once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.helpers import metric_samples
from tests.postgres import throwaway_database
from tests.processes import (
    answers,
    cli_env,
    free_port,
    run_cli,
    start_cli,
    stop,
    wait_for,
    wait_for_job,
)

pytestmark = pytest.mark.e2e

JOBS = 6


def test_api_only_process_and_worker_pool_share_the_queue(tmp_path: Path) -> None:
    with throwaway_database() as database_url:
        env = cli_env(
            tmp_path / "data",
            MUSICSTUDIO_DATABASE_URL=database_url,
            MUSICSTUDIO_SECRET_KEY="k" * 32,
            MUSICSTUDIO_POLL_SECONDS="30",  # idle workers wake on NOTIFY, not by polling
        )
        issued = json.loads(run_cli(["admin", "bootstrap", "--json"], env))
        port = free_port()
        api = start_cli(["serve", "--workers", "0", "--port", str(port)], env, tmp_path / "api.log")
        workers = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: answers(f"{base}/healthz"), 60, "the API to answer")
            headers = {"X-API-Key": issued["api_key"]}
            org_url = f"{base}/v1/music/{issued['organization_id']}"
            jobs_url = "/generations"
            metrics_port = free_port()
            workers = start_cli(
                ["worker", "--concurrency", "2", "--metrics-port", str(metrics_port)],
                env,
                tmp_path / "workers.log",
            )
            wait_for(
                lambda: (
                    (tmp_path / "workers.log").read_text().count(" started\n") >= 2
                    and "supervising 2" in (tmp_path / "workers.log").read_text()
                ),
                60,
                "two worker processes to start",
            )
            with httpx.Client(base_url=org_url, headers=headers, timeout=30) as http:
                ids = []
                for n in range(JOBS):
                    body = {"engine": "studio", "prompt": f"house {n}", "duration_seconds": 20}
                    created = http.post(jobs_url, json=body)
                    assert created.status_code == 202, created.text
                    ids.append(created.json()["id"])
                for job_id in ids:
                    job = wait_for_job(http, job_id, timeout=120)
                    assert job["status"] == "succeeded", job
                    audio = http.get(job["playback_url"])
                    assert audio.status_code == 200 and len(audio.content) > 1000
            samples = metric_samples(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
        finally:
            if workers is not None:
                stop(workers)
            stop(api)
        assert "claimed" not in (tmp_path / "api.log").read_text(), "no rendering in the API"
        log = (tmp_path / "workers.log").read_text()
        claims = re.findall(r"job (mgen_\w+) attempt (\d+) claimed by [^:\s]+:(\d+):", log)
        assert sorted(job for job, _, _ in claims) == sorted(ids), "each job claimed once"
        assert {attempt for _, attempt, _ in claims} == {"1"}
        assert len({pid for _, _, pid in claims}) == 2, "both worker processes took jobs"
    # The pool's metrics endpoint sums both processes' samples.
    assert samples[("musicstudio_job_claim_latency_seconds_count", ())] == JOBS
    assert samples[("musicstudio_worker_attempts_total", (("outcome", "succeeded"),))] == JOBS
    rtf_key = (("engine", "studio"),)
    assert samples[("musicstudio_render_realtime_factor_count", rtf_key)] == JOBS
    mean_rtf = samples[("musicstudio_render_realtime_factor_sum", rtf_key)] / JOBS
    assert mean_rtf > 1.0, "the studio engine renders faster than real time"
