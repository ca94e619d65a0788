"""The processes of a chaos run: one API-only server and worker processes that a seeded
random schedule kills with SIGKILL and restarts at once, each life logging to its own file."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from tests.chaos.history import Claim, Kill, WorkerLog, parse_worker_log
from tests.helpers import metric_samples
from tests.processes import answers, free_port, log_tail, run_cli, start_cli, stop, wait_for

START_SECONDS = 90
BUSY_SHARE = 0.75  # of kills aimed at workers in the middle of an attempt
BUSY_WAIT_SECONDS = 2.0  # how long such a kill waits for one
# Aimed kills leave a job alone once it has been hit this often: otherwise the last jobs of
# a run, alone in being worked on, would be hunted down attempt after attempt.
AIMED_HITS_PER_JOB = 2


@dataclass
class _Life:
    """One worker process: a slot's current or past incarnation."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class _KillRecord:
    life: _Life
    pid: int
    at: float


class ChaosCluster:
    """An API process and ``workers`` worker slots sharing one environment."""

    def __init__(self, root: Path, env: dict[str, str], workers: int, rng: random.Random) -> None:
        self.root = root
        self.env = env
        self.rng = rng
        self.slots: list[_Life | None] = [None] * workers
        self.lives: list[_Life] = []
        self.killed: list[_KillRecord] = []
        self.idle_ticks = 0  # kill times at which no worker was serving yet
        self.hits: Counter[str] = Counter()  # kills that found a worker in each job
        self.api: subprocess.Popen[bytes] | None = None
        self.api_log = root / "api.log"
        self.base = ""  # the API's URL once started
        self.began = time.monotonic()

    def bootstrap(self) -> dict[str, str]:
        """An organization, user and API key in the (migrated) database."""
        issued: dict[str, str] = json.loads(run_cli(["admin", "bootstrap", "--json"], self.env))
        return issued

    def start(self) -> str:
        """Start the API and every worker; the API's base URL once all of them are up."""
        port = free_port()
        args = ["serve", "--workers", "0", "--port", str(port)]
        self.api = start_cli(args, self.env, self.api_log)
        for slot in range(len(self.slots)):
            self._start_worker(slot)
        self.base = f"http://127.0.0.1:{port}"
        wait_for(lambda: self.check_api() and answers(f"{self.base}/healthz"), START_SECONDS, "API")
        for life in self.lives:
            wait_for(partial(_started, life), START_SECONDS, f"{life.name} to start")
        self.began = time.monotonic()
        return self.base

    def _start_worker(self, slot: int) -> None:
        lives = sum(life.name.startswith(f"worker-{slot}.") for life in self.lives)
        name = f"worker-{slot}.{lives}"
        log = self.root / f"{name}.log"
        life = _Life(name, start_cli(["worker"], self.env, log), log)
        self.slots[slot] = life
        self.lives.append(life)

    def kill_random_worker(self) -> bool:
        """SIGKILL a serving worker chosen by the seeded RNG, reap it and start a new one.

        Workers still starting are spared: killing an import proves nothing about the
        queue, and on two cores back-to-back restarts would starve every worker of CPU.
        False when no worker is serving yet.
        """
        life = self._choose_victim()
        if life is None:
            self.idle_ticks += 1
            return False
        life.popen.send_signal(signal.SIGKILL)
        life.popen.wait()
        self.killed.append(_KillRecord(life, life.popen.pid, time.monotonic() - self.began))
        held = parse_worker_log(life.name, life.log.read_text()).held()
        if held is not None:
            self.hits[held[0].job_id] += 1
        self._start_worker(self.slots.index(life))
        return True

    def _choose_victim(self) -> _Life | None:
        """Most often a worker in the middle of an attempt (waited for briefly); else any
        serving worker, so that idle moments (polling, claiming) are hit too."""
        aim_at_work = self.rng.random() < BUSY_SHARE
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            logs = [(life, _log_of(life)) for life in self.slots if life is not None]
            serving = [life for life, log in logs if log.started]
            busy = [life for life, log in logs if _aimable(log.held(), self.hits)]
            if busy or not aim_at_work or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        candidates = busy if busy and aim_at_work else serving
        return self.rng.choice(candidates) if candidates else None

    def check_api(self) -> bool:
        assert self.api is not None and self.api.poll() is None, (
            f"the API exited:\n{log_tail(self.api_log)}"
        )
        return True

    def jobs_pending(self) -> bool:
        """True while the API's metrics (read from the database) count a queued or running job."""
        self.check_api()
        scraped = httpx.get(f"{self.base}/metrics", timeout=30)
        assert scraped.status_code == 200, scraped.text
        queue = metric_samples(scraped.text)
        return any(queue[("musicstudio_jobs", (("status", s),))] for s in ("queued", "running"))

    def stop(self) -> dict[str, int]:
        """SIGTERM the live workers and the API; their exit codes by name."""
        live = [life for life in self.slots if life is not None]
        # A worker still importing has no SIGTERM handler yet and would die of the signal.
        # One that died or never starts is stopped all the same; its exit code tells.
        with contextlib.suppress(AssertionError):
            for life in live:
                wait_for(partial(_started, life), START_SECONDS, f"{life.name} to start")
        codes = {life.name: stop(life.popen) for life in live}
        if self.api is not None:
            codes["api"] = stop(self.api)
        return codes

    def worker_logs(self) -> list[WorkerLog]:
        """Every worker life's log (read after they stopped, so complete)."""
        return [parse_worker_log(life.name, life.log.read_text()) for life in self.lives]

    def kills(self, logs: list[WorkerLog]) -> list[Kill]:
        """The kill log: each kill with the attempt its victim's log shows it was holding."""
        by_name = {log.name: log for log in logs}
        return [Kill.of(by_name[k.life.name], k.pid, k.at) for k in self.killed]

    def tails(self, lines: int = 20) -> str:
        lives = [life for life in self.slots if life is not None]
        return "".join(f"\n--- {life.name}:\n{log_tail(life.log, lines)}" for life in lives) + (
            f"\n--- api:\n{log_tail(self.api_log, lines)}"
        )


def _log_of(life: _Life) -> WorkerLog:
    assert life.popen.poll() is None, f"{life.name} died on its own:\n{log_tail(life.log)}"
    return parse_worker_log(life.name, life.log.read_text())


def _aimable(held: tuple[Claim, str] | None, hits: Counter[str]) -> bool:
    return held is not None and hits[held[0].job_id] < AIMED_HITS_PER_JOB


def _started(life: _Life) -> bool:
    return _log_of(life).started
