"""``musicstudio serve`` as a user runs it: first-run key, the curl walk-through, real audio."""

from __future__ import annotations

import io
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import soundfile as sf

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


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_serve_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = cli_env(tmp_path / "fresh-data-dir")
    server = start_cli(["serve", "--port", str(port), "--workers", "1"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return server.poll() is not None  # fail fast below if it died

        wait_for(ready, 60, "the API to answer")
        assert server.poll() is None, log.read_text()
        text = log.read_text()
        org = re.search(r"MUSICSTUDIO_ORG=(org_\w+)", text)
        key = re.search(r"MUSICSTUDIO_API_KEY=(msk_\w{40})", text)
        assert org and key, f"the first run prints the default credentials:\n{text}"
        assert (tmp_path / "fresh-data-dir" / "secret_key").exists()
        assert key.group(1) not in (
            tmp_path / "fresh-data-dir" / "musicstudio.db"
        ).read_bytes().decode("latin-1"), "keys are stored only as hashes"

        http = httpx.Client(
            base_url=f"{base}/v1/music/{org.group(1)}", headers={"X-API-Key": key.group(1)}
        )
        engines = http.get("/engines").json()["engines"]
        assert [e["engine_key"] for e in engines] == ["studio"]

        created = http.post(
            "/generations",
            json={
                "engine": "studio",
                "prompt": "lo-fi hip hop with mellow piano",
                "duration_seconds": 4,
            },
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        job = wait_for_job(http, job_id)
        assert job["status"] == "succeeded", job
        listed = http.get("/generations", params={"status": "succeeded", "limit": 20}).json()
        assert [j["id"] for j in listed["jobs"]] == [job_id]

        audio = httpx.get(job["playback_url"])
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
        data, rate = sf.read(io.BytesIO(audio.content))
        assert abs(len(data) / rate - 4.0) <= 0.05

        # The CLI client: submit, follow, save.
        out = tmp_path / "cli.mp3"
        client_env = {
            **env,
            "MUSICSTUDIO_URL": base,
            "MUSICSTUDIO_API_KEY": key.group(1),
            "MUSICSTUDIO_ORG": org.group(1),
        }
        run_cli(["generate", "dreamy synthwave", "--duration", "3", "--out", str(out)], client_env)
        assert abs(sf.info(str(out)).duration - 3.0) <= 0.05

        # A worker that dies is restarted by the supervisor, and work goes on.
        [worker_pid] = _children(server.pid)
        subprocess.run(["kill", "-9", str(worker_pid)], check=True)
        wait_for(lambda: (c := _children(server.pid)) and c != [worker_pid], 30, "a new worker")
        second = http.post(
            "/generations",
            json={"engine": "studio", "prompt": "short jazz piano", "duration_seconds": 2},
        ).json()
        done = wait_for_job(http, second["id"])
        assert done["status"] == "succeeded"

        cancelled = http.post(f"/generations/{second['id']}/cancel").json()
        assert cancelled["status"] == "succeeded", "cancel of a terminal job is a no-op"
        http.close()

        # The API's /metrics carries its supervised workers' metrics, the killed one's too.
        metrics = httpx.get(f"{base}/metrics").text
        rendered = re.search(
            r'^musicstudio_render_realtime_factor_count\{engine="studio"\} (\S+)$', metrics, re.M
        )
        assert rendered and float(rendered.group(1)) == 3.0, metrics
    finally:
        workers = _children(server.pid)
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=60)
        finally:
            stop(server)
    assert code == 0, log.read_text()[-3000:]
    assert workers and not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers stopped"
    assert "Traceback" not in log.read_text()


def test_second_start_does_not_print_a_new_key(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    for attempt in range(2):
        port = free_port()
        health = f"http://127.0.0.1:{port}/healthz"
        log = tmp_path / f"serve{attempt}.log"
        server = start_cli(["serve", "--port", str(port), "--workers", "0"], env, log)
        try:
            wait_for(lambda url=health: answers(url), 60, "the API to answer")
        finally:
            assert stop(server) == 0, "SIGTERM stops serve cleanly"
        printed = "MUSICSTUDIO_API_KEY=" in log.read_text()
        assert printed == (attempt == 0)


def test_workers_exit_when_serve_is_killed(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(tmp_path / "data")
    server = start_cli(["serve", "--port", str(port), "--workers", "2"], env, tmp_path / "s.log")
    try:
        workers = wait_for(lambda: len(c := _children(server.pid)) == 2 and c, 60, "two workers")
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60, "the API to answer")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    wait_for(
        lambda: not any(_alive(pid) for pid in workers),
        15,
        "orphaned workers to stop by themselves",
    )


def _alive(pid: int) -> bool:
    # An exited orphan is reaped by init; a zombie still has a /proc entry marked Z.
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
