"""Where a server's time goes per request, from sampled stacks (py-spy's raw format).

py-spy is not a project dependency; install it anywhere (``pip install py-spy`` in a scratch
venv) and sample the real server under steady load, e.g. for the list endpoint::

    py-spy record --pid PID --rate 250 --nonblocking --format raw -o stacks.txt --duration 20
    python bench/profile_stacks.py stacks.txt --rate 250 --requests 41000

Every sample (a ``frame;frame;… count`` line, outermost frame first) goes to the first of
``REGIONS`` with a marker frame anywhere in it (auth, view building, page query,
serialization, handler), else to the layer of its innermost frame (access log, asyncpg,
FastAPI, Starlette, uvicorn, the event loop's C code). With the number of requests served
while sampling, sample counts become CPU microseconds per request.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# Request-specific regions: a sample is put in the first of these with a marker frame
# anywhere in its stack, so a region holds everything below its marker (the auth row holds
# the key's HMAC and its SQL lookup). Lean reference frames (bench/list_servers.py) included.
REGIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "auth: X-API-Key HMAC + key lookup (incl. its SQL)",
        (
            "current_principal (",
            "authenticate (",
            "org_principal (",
            "_authenticate (",
            "hmac.py",
            "looks_like_api_key",
        ),
    ),
    (
        "view building: row → dict, datetime → text",
        ("job_view (", "isoformat_z (", "_seconds (", "_sqlite_job (", "_postgres_job ("),
    ),
    (
        "page query: statement, driver call, rows",
        ("list_jobs (musicstudio/services", "page (list_servers.py", "_fetch (list_servers.py"),
    ),
    (
        "database reads whose stack py-spy cut short (auth lookup or page)",
        ("Database.fetch_all (", "Database._sqlite_fetch_all ("),
    ),
    ("serialization: orjson", ("_json (musicstudio/api", "_page_body (")),
    (
        "route handler's own lines (real: query validation in pydantic-core)",
        ("list_generations_hot (", "_list_page (", "list_generations ("),
    ),
)
# Everything else by the innermost frame that belongs to one of these code bases.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access log (uvicorn.access → logging)", ("logging/", "uvicorn/logging.py")),
    ("asyncpg, resumed by the loop (auth and page queries)", ("asyncpg/",)),
    ("FastAPI: routing, dependencies, validation", ("fastapi/",)),
    (
        "Starlette: routing, middleware (incl. the app's request id, metrics, errors)",
        ("starlette/", "musicstudio/api/", "uuid.py"),
    ),
    ("uvicorn: HTTP protocol (httptools), ASGI cycle", ("uvicorn/",)),
    ("event loop in C: uvloop, epoll, socket reads and writes", ("asyncio/runners.py",)),
)
OTHER = "other Python (asyncio, contextlib, …)"
CATEGORIES = REGIONS + LAYERS
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")


def classify(stack: str) -> str:
    for name, patterns in REGIONS:
        if any(p in stack for p in patterns):
            return name
    for frame in reversed(stack.split(";")):
        for name, patterns in LAYERS:
            if any(p in frame for p in patterns):
                return name
    return OTHER


def tally(lines: list[str], thread: str | None = None) -> dict[str, int]:
    """Samples per category; ``thread`` keeps only stacks whose first frame names it."""
    counts: dict[str, int] = {}
    for line in lines:
        match = _LINE.match(line.strip())
        if match is None:
            continue
        stack = match.group("stack")
        if thread is not None and thread not in stack.split(";", 1)[0]:
            continue
        name = classify(stack)
        counts[name] = counts.get(name, 0) + int(match.group("count"))
    return counts


def table(counts: dict[str, int], requests: float | None = None, rate: float = 0) -> str:
    """Shares of the samples; with ``requests`` served while sampling at ``rate`` Hz, CPU µs
    per request (py-spy records running threads only, so this holds without saturation)."""
    total = sum(counts.values()) or 1
    per_request = bool(requests and rate)
    order = [name for name, _ in CATEGORIES] + [OTHER]
    head = "| where | share |" + (" CPU µs/request |" if per_request else "")
    lines = [head, "|---|---:|" + ("---:|" if per_request else "")]

    def us(samples: int) -> str:
        return f" {samples / rate / requests * 1e6:,.0f} |" if requests and rate else ""

    for name in order:
        if name in counts:
            lines.append(f"| {name} | {counts[name] / total:.1%} |{us(counts[name])}")
    lines.append(f"| total ({total:,} samples) | 100% |{us(total)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("stacks", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--requests", type=float, help="requests served while sampling")
    parser.add_argument("--rate", type=float, default=100, help="py-spy's --rate (Hz)")
    parser.add_argument("--thread", help="only stacks of this thread (e.g. MainThread)")
    parser.add_argument("--top", type=int, default=0, help="also list the N biggest leaf frames")
    args = parser.parse_args(argv)
    lines = args.stacks.read_text().splitlines()
    print(table(tally(lines, args.thread), args.requests, args.rate))
    if args.top:
        leaves: dict[str, int] = {}
        for line in lines:
            match = _LINE.match(line.strip())
            if match:
                leaf = match.group("stack").rsplit(";", 1)[-1]
                leaves[leaf] = leaves.get(leaf, 0) + int(match.group("count"))
        print()
        for leaf, count in sorted(leaves.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{count:8,}  {leaf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
