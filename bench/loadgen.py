"""HTTP/1.1 keep-alive load: ``wrk`` when installed, else a small asyncio load generator.

**wrk** (Debian package ``wrk``, 4.1.0) is the one to use: one C thread drives tens of
thousands of requests per second, which the Python generator cannot (it tops out at a few
thousand). :func:`run_wrk` runs a warm-up, then the measured window with ``--latency``, and
parses wrk's report (:func:`parse_wrk`): requests/s, the latency percentiles, non-2xx/3xx
responses and socket errors. wrk counts a request when its response completes; ``-d`` is
whole seconds.

**The Python fallback** (:func:`run_load`): N connections, each a loop of "send one GET, read
the whole response" over raw ``asyncio.open_connection`` streams (no pipelining). The run is
a warm-up followed by a fixed measurement window; a response counts when it *completes*
inside the window, so requests/s is the steady-state completion rate. Every response must be
``200``; anything else (other status, broken connection, timeout) is counted as an error.

Either way it runs in its own process, pinned with ``--cpu`` to a core the server does not
use::

    python bench/loadgen.py --url http://127.0.0.1:8000/path?x=1 \
        --header 'X-API-Key: msk_...' --connections 8 --warmup 1 --duration 5 --cpu 1

It prints one JSON object on stdout (see :func:`summarize`; wrk adds ``p75_ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REQUEST_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 120.0
MAX_ERROR_SAMPLES = 5


@dataclass
class Target:
    """Where to connect and the exact request bytes to send each time."""

    host: str
    port: int
    request: bytes

    @classmethod
    def from_url(cls, url: str, headers: list[tuple[str, str]]) -> Target:
        """Build the GET request for ``url`` (http only) with extra ``headers``."""
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port/... URLs are supported, got {url!r}")
        port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {parts.hostname}:{port}",
            "Accept: */*",
            "Connection: keep-alive",
            *(f"{name}: {value}" for name, value in headers),
        ]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return cls(host=parts.hostname, port=port, request=request)


@dataclass
class Stats:
    """What the connections record; latencies only for responses completed in the window."""

    window_start: float
    window_end: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    errors_in_window: int = 0
    error_samples: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    body_bytes: int = 0
    completed_outside_window: int = 0

    def error(self, now: float, message: str) -> None:
        """Count an error (always), and keep the first few messages."""
        self.errors += 1
        if self.window_start <= now <= self.window_end:
            self.errors_in_window += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)


class ResponseError(Exception):
    """The server's answer could not be parsed as a complete HTTP/1.1 response."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one response; returns (status, body length, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise ResponseError(f"bad status line {lines[0][:80]!r}")
    status = int(status_line[1])
    length: int | None = None
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
        elif lowered == b"transfer-encoding":
            raise ResponseError("chunked responses are not supported by this load generator")
    if length is None:
        raise ResponseError("response without Content-Length")
    if length:
        await reader.readexactly(length)
    return status, length, keep_alive


async def connection_loop(target: Target, stats: Stats) -> None:
    """One keep-alive connection: request after request until the window closes."""
    loop = asyncio.get_running_loop()
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    try:
        while loop.time() < stats.window_end:
            if writer is None or reader is None:
                try:
                    reader, writer = await asyncio.open_connection(target.host, target.port)
                except OSError as exc:
                    stats.error(loop.time(), f"connect: {exc!r}")
                    await asyncio.sleep(0.05)
                    continue
            started = loop.time()
            try:
                writer.write(target.request)
                async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    status, length, keep_alive = await read_response(reader)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ResponseError) as exc:
                stats.error(loop.time(), f"{type(exc).__name__}: {exc}")
                writer.close()
                writer = reader = None
                continue
            done = loop.time()
            if stats.window_start <= done <= stats.window_end:
                stats.latencies.append(done - started)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                stats.body_bytes += length
            else:
                stats.completed_outside_window += 1
            if status != 200:
                stats.error(done, f"HTTP {status}")
            if not keep_alive:
                writer.close()
                writer = reader = None
    finally:
        if writer is not None:
            writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(stats: Stats, duration: float, connections: int) -> dict[str, Any]:
    """The run as plain JSON-able numbers (times in milliseconds)."""
    values = sorted(stats.latencies)
    count = len(values)
    return {
        "connections": connections,
        "duration_s": duration,
        "requests": count,
        "rps": count / duration if duration > 0 else math.nan,
        "p50_ms": percentile(values, 0.50) * 1000,
        "p90_ms": percentile(values, 0.90) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "max_ms": (values[-1] * 1000) if values else math.nan,
        "mean_ms": (sum(values) / count * 1000) if count else math.nan,
        "errors": stats.errors,
        "errors_in_window": stats.errors_in_window,
        "error_samples": stats.error_samples,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "mean_body_bytes": (stats.body_bytes / count) if count else 0,
        "completed_outside_window": stats.completed_outside_window,
    }


async def run_load(
    url: str,
    headers: list[tuple[str, str]],
    *,
    connections: int,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    """Drive ``url`` with ``connections`` keep-alive connections; see the module docstring."""
    target = Target.from_url(url, headers)
    loop = asyncio.get_running_loop()
    start = loop.time()
    stats = Stats(window_start=start + warmup, window_end=start + warmup + duration)
    tasks = [asyncio.create_task(connection_loop(target, stats)) for _ in range(connections)]
    # Requests still in flight when the window closes are awaited (not counted) so the
    # server is idle again before the next measurement starts.
    done, pending = await asyncio.wait(tasks, timeout=warmup + duration + DRAIN_TIMEOUT_SECONDS)
    for task in pending:
        task.cancel()
        stats.error(loop.time(), "request still pending after the drain timeout")
    for task in done:
        exc = task.exception()
        if exc is not None:
            stats.error(loop.time(), f"connection task crashed: {exc!r}")
    return summarize(stats, duration, connections)


# --------------------------------------------------------------------------- wrk

WRK_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_WRK_TIME = r"([\d.]+)(us|ms|s|m|h)"


def wrk_path() -> str | None:
    """The ``wrk`` executable, or None when it is not installed."""
    return shutil.which("wrk")


def _ms(number: str, unit: str) -> float:
    return float(number) * WRK_TIME_UNITS[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    """wrk's ``--latency`` report as the same numbers :func:`summarize` gives (ms, req/s)."""
    out: dict[str, Any] = {}
    for pct, number, unit in re.findall(r"^\s*(50|75|90|99)%\s+" + _WRK_TIME, text, re.M):
        out[f"p{pct}_ms"] = _ms(number, unit)
    stats = re.search(
        r"^\s*Latency\s+" + _WRK_TIME + r"\s+" + _WRK_TIME + r"\s+" + _WRK_TIME, text, re.M
    )
    if stats:
        out["mean_ms"] = _ms(stats.group(1), stats.group(2))
        out["max_ms"] = _ms(stats.group(5), stats.group(6))
    done = re.search(r"^\s*(\d+) requests in " + _WRK_TIME + r", ([\d.]+)(\w+) read", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if done is None or rps is None:
        raise ValueError(f"cannot parse wrk output:\n{text}")
    out["requests"] = int(done.group(1))
    out["duration_s"] = _ms(done.group(2), done.group(3)) / 1000
    out["rps"] = float(rps.group(1))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = [int(n) for n in socket.groups()] if socket else [0, 0, 0, 0]
    out["socket_errors"] = dict(
        zip(("connect", "read", "write", "timeout"), socket_errors, strict=True)
    )
    out["non_2xx_3xx"] = int(non_2xx.group(1)) if non_2xx else 0
    out["errors"] = out["non_2xx_3xx"] + sum(socket_errors)
    for key in ("p50_ms", "p75_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"):
        out.setdefault(key, math.nan)
    return out


def _pinned(cmd: list[str], cpu: int | None) -> list[str]:
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None:
        return cmd
    return [taskset, "-c", str(cpu), *cmd]


def run_wrk(
    url: str,
    headers: list[tuple[str, str]],
    *,
    connections: int,
    warmup: float,
    duration: float,
    timeout: float = 60.0,
    cpu: int | None = None,
) -> dict[str, Any]:
    """A warm-up run (discarded), then the measured one; one wrk thread, pinned to ``cpu``."""
    wrk = wrk_path()
    if wrk is None:
        raise FileNotFoundError("wrk is not installed")
    base = [wrk, "-t1", f"-c{connections}", f"--timeout={math.ceil(timeout)}s"]
    for name, value in headers:
        base += ["-H", f"{name}: {value}"]
    if warmup > 0:
        cmd = _pinned([*base, f"-d{max(1, math.ceil(warmup))}s", url], cpu)
        subprocess.run(cmd, capture_output=True, check=True, timeout=warmup + timeout + 60)
    seconds = max(1, math.ceil(duration))
    cmd = _pinned([*base, f"-d{seconds}s", "--latency", url], cpu)
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=seconds + timeout + 60
    )
    result = parse_wrk(done.stdout)
    result.update(connections=connections, tool="wrk", wrk_report=done.stdout)
    return result


# --------------------------------------------------------------------------- command line


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header must look like 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    """Command line: run one measurement and print its JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="http://host:port/path?query")
    parser.add_argument(
        "--header", action="append", default=[], type=_parse_header, help="'Name: value'"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds, not measured")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument(
        "--tool",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), or the asyncio generator",
    )
    parser.add_argument("--cpu", type=int, help="pin the load generator to this core")
    parser.add_argument("--timeout", type=float, default=60.0, help="wrk: per-request seconds")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if wrk_path() else "python"
    if tool == "wrk":
        result = run_wrk(
            args.url,
            args.header,
            connections=args.connections,
            warmup=args.warmup,
            duration=args.duration,
            timeout=args.timeout,
            cpu=args.cpu,
        )
    else:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        result = asyncio.run(
            run_load(
                args.url,
                args.header,
                connections=args.connections,
                warmup=args.warmup,
                duration=args.duration,
            )
        )
        result["tool"] = "python"
    result["wall_s"] = time.perf_counter() - started
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
