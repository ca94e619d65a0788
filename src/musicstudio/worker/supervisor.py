"""Keeps N worker processes alive beside the API (a native crash kills one worker, not us)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

from musicstudio.config import Settings, get_settings
from musicstudio.worker.metrics import SharedMetricsDir

log = logging.getLogger("musicstudio.supervisor")

RESTART_BACKOFF_MAX = 10.0
STOP_MARGIN_SECONDS = 5.0  # on top of a child's soft + hard stop: its start-up and exit


def stop_grace_seconds(settings: Settings) -> float:
    """How long a stopping worker process may take before it is killed."""
    return settings.stop_soft_seconds + settings.stop_hard_seconds + STOP_MARGIN_SECONDS


class WorkerSupervisor:
    """Starts ``musicstudio worker`` processes and restarts any that exit.

    The children record their metrics into ``self.metrics`` (prometheus-client's multiprocess
    mode); ``self.metrics.registry()`` reads them all.
    """

    def __init__(
        self, count: int, command: list[str] | None = None, *, stop_seconds: float | None = None
    ) -> None:
        self.count = count
        # The children read the same environment, so their stop timeouts are these too.
        self.stop_seconds = (
            stop_grace_seconds(get_settings()) if stop_seconds is None else stop_seconds
        )
        self.command = command or [
            sys.executable,
            "-m",
            "musicstudio",
            "worker",
            "--parent-pid",
            str(os.getpid()),
        ]
        self.metrics = SharedMetricsDir()
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self._started_at = [0.0] * count
        self._failures = [0] * count
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self.restarts = 0

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        self._thread.start()

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None and p.poll() is None]

    def _spawn(self, slot: int) -> None:
        self._procs[slot] = subprocess.Popen(self.command, env=os.environ | self.metrics.env())
        self._started_at[slot] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, self._procs[slot].pid)  # type: ignore[union-attr]

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for slot, proc in enumerate(self._procs):
                if proc is None or proc.poll() is None:
                    continue
                lived = time.monotonic() - self._started_at[slot]
                # A worker dying at once, again and again, is backed off, not spun.
                self._failures[slot] = 0 if lived > 30 else self._failures[slot] + 1
                delay = min(RESTART_BACKOFF_MAX, 0.5 * (2 ** max(0, self._failures[slot] - 1)))
                log.warning(
                    "worker %d (pid %d) exited with %s; restarting in %.1fs",
                    slot,
                    proc.pid,
                    proc.returncode,
                    delay,
                )
                if self._stopping.wait(delay):
                    return
                self._spawn(slot)
                self.restarts += 1

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM every worker (each finishes or hands back its job and exits within its
        soft + hard stop timeouts), then SIGKILL stragglers after ``stop_seconds``."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        procs = [p for p in self._procs if p is not None and p.poll() is None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + (self.stop_seconds if timeout is None else timeout)
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.metrics.remove()
