"""Real processes for tests: the CLI run as a subprocess against a data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICSTUDIO_")}
    env.update(
        MUSICSTUDIO_DATA_DIR=str(data_dir),
        MUSICSTUDIO_POLL_SECONDS="0.1",
        # Limits out of the way; the tests of limits set their own.
        MUSICSTUDIO_RATE_LIMIT_PER_MINUTE="1000000",
        MUSICSTUDIO_RATE_LIMIT_BURST="1000000",
        MUSICSTUDIO_MAX_ACTIVE_JOBS_PER_ORG="1000000",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "musicstudio", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "musicstudio", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns a truthy value (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def answers(url: str) -> bool:
    """True when ``url`` answers 200 (a server that is up)."""
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_job(http: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll ``GET /generations/{job_id}`` through ``http`` until the job is terminal."""
    terminal = ("succeeded", "failed", "cancelled", "refused")

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/generations/{job_id}").json()
        return job if job["status"] in terminal else None

    return wait_for(finished, timeout, f"job {job_id} to finish")


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a process log, for failure messages ("" if it is missing)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
