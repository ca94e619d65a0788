"""A small HTTP/1.1 keep-alive load generator (no wrk/hey on the project's machines).

N connections, each a loop of "send one GET, read the whole response" over raw
``asyncio.open_connection`` streams (no pipelining). The run is a warm-up followed by a
fixed measurement window; a response counts when it *completes* inside the window, so
requests/s is the steady-state completion rate. Every response must be ``200``; anything
else (other status, broken connection, timeout) is counted as an error.

Run it in its own process so it never shares an event loop (or a core) with the server::

    python bench/loadgen.py --url http://127.0.0.1:8000/path?x=1 \
        --header 'X-API-Key: msk_...' --connections 8 --warmup 1 --duration 5

It prints one JSON object on stdout (see :func:`summarize`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = asyncio.run(
        run_load(
            args.url,
            args.header,
            connections=args.connections,
            warmup=args.warmup,
            duration=args.duration,
        )
    )
    result["wall_s"] = time.perf_counter() - started
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
