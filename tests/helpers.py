"""Small helpers shared by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

import httpx
from prometheus_client.parser import text_string_to_metric_families

from musicstudio.api.app import create_app

JOB_FIELDS = {
    "id",
    "status",
    "progress",
    "engine",
    "mode",
    "created_at",
    "result_track_id",
    "error_message",
    "refusal_reason",
    "playback_url",
    "track",
}
# Single-job views add one extra field: the plan the track was made from.
SINGLE_JOB_FIELDS = JOB_FIELDS | {"recipe"}


def job_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "engine": "studio",
        "prompt": "calm lo-fi beat with soft piano",
        "duration_seconds": 2,
    }
    body.update(overrides)
    return body


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The reference's envelope, with trace_id equal to the response's x-request-id."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    error = body["error"]
    assert set(error) >= {
        "code",
        "message",
        "system_message",
        "type",
        "status",
        "details",
        "trace_id",
        "timestamp",
    }
    assert error["code"] == code
    assert error["status"] == status
    assert error["trace_id"] == response.headers["x-request-id"]
    assert error["timestamp"].endswith("Z")
    assert "Traceback" not in response.text
    return dict(error)


def error_fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["error"]["details"]["errors"]]


def local_path(url: str) -> str:
    """A signed media URL as a path the in-process test client can fetch."""
    parsed = urlparse(url)
    return f"{parsed.path}?{parsed.query}"


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def track_values(
    track_id: str, org_id: str, user_id: str, created_at: Any, **overrides: Any
) -> dict[str, Any]:
    """A finished track's row, for tests that write tracks straight to the store."""
    values: dict[str, Any] = {
        "id": track_id,
        "org_id": org_id,
        "user_id": user_id,
        "title": "a track",
        "engine": "studio",
        "mode": "creation",
        "instrumental": True,
        "measured_duration_seconds": 2.0,
        "mime_type": "audio/mpeg",
        "storage_key": f"tracks/{org_id}/{track_id}.mp3",
        "size_bytes": 1,
        "licence_class": "unclear",
        "licence_version": "test",
        "commercial_use": False,
        "requires_attribution": True,
        "recipe": {},
        "created_at": created_at,
    }
    values.update(overrides)
    return values


def without_request_ids(response: httpx.Response) -> dict[str, Any]:
    """An error body with the parts that differ per request removed."""
    body = response.json()
    body["error"].pop("trace_id")
    body["error"].pop("timestamp")
    return dict(body)


async def insert_job_rows(
    ctx: Any, org_id: str, user_id: str, count: int, *, created_at: Any, status: str = "queued"
) -> list[str]:
    """Jobs written straight to the store (for ordering tests that need equal timestamps)."""
    from musicstudio import ids
    from musicstudio.store.jobs import insert_job

    made = []
    async with ctx.db.write() as conn:
        for _ in range(count):
            job_id = ids.new_id(ids.JOB)
            await insert_job(
                conn,
                {
                    "id": job_id,
                    "org_id": org_id,
                    "user_id": user_id,
                    "status": status,
                    "progress": 0,
                    "engine": "studio",
                    "mode": "creation",
                    "created_at": created_at,
                    "updated_at": created_at,
                    "request": {"prompt": "x", "duration_seconds": 1},
                    "available_at": created_at,
                    "attempt": 0,
                    "max_attempts": 3,
                    "cancel_requested": False,
                },
            )
            made.append(job_id)
    return made


async def job_row(ctx: Any, job_id: str) -> dict[str, Any]:
    """Every column of one job, read straight from the store."""
    from sqlalchemy import select

    from musicstudio.db.tables import generation_jobs

    async with ctx.db.read() as conn:
        query = select(generation_jobs).where(generation_jobs.c.id == job_id)
        row = (await conn.execute(query)).one()
    return dict(row._mapping)


@asynccontextmanager
async def api_client(ctx: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app built on ``ctx`` (a ServiceContext), called in process; errors as a client
    sees them (500 envelopes), never raised into the test."""
    transport = httpx.ASGITransport(app=create_app(ctx=ctx), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
