"""A Redis for the shared rate-limit tests.

In this order: ``MUSICSTUDIO_TEST_REDIS_URL``; the local server on 127.0.0.1:6379 if it
answers; else a ``redis-server`` this process starts on a free loopback port (no persistence),
stopped at exit. Without any, the tests are skipped, except under ``CI=true`` (a failure).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.processes import free_port

LOCAL_URL = "redis://127.0.0.1:6379/0"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@functools.cache
def _start_server() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _answers("127.0.0.1", port):
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    return None


def redis_url() -> str:
    """A Redis URL the tests may use (keys are unique per test: API key ids)."""
    configured = os.environ.get("MUSICSTUDIO_TEST_REDIS_URL")
    if configured:
        return configured
    if _answers("127.0.0.1", 6379):
        return LOCAL_URL
    started = _start_server()
    if started is not None:
        return started
    message = "no Redis: none configured, none on 127.0.0.1:6379, no redis-server to start"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
