"""The reference's JSON shapes for jobs and tracks (plain dicts, serialized by the API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from musicstudio.clock import isoformat_z


def whole_seconds(value: Any) -> str | None:
    """The reference shows whole seconds: 2026-06-28T10:30:00Z."""
    if isinstance(value, str):
        # SQLite's stored form, read by a plain driver: ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC.
        return f"{value[:10]}T{value[11:19]}Z"
    text = isoformat_z(value)
    return None if text is None else text[:19] + "Z"


def job_view(
    row: Mapping[Any, Any],
    *,
    playback_url: str | None = None,
    track: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The eleven fields of a job; URLs and the track summary only on single-job reads."""
    return {
        "id": row["id"],
        "status": row["status"],
        "progress": row["progress"],
        "engine": row["engine"],
        "mode": row["mode"],
        "created_at": whole_seconds(row["created_at"]),
        "result_track_id": row["result_track_id"],
        "error_message": row["error_message"],
        "refusal_reason": row["refusal_reason"],
        "playback_url": playback_url,
        "track": track,
    }


def track_summary(row: Mapping[Any, Any], playback_url: str | None) -> dict[str, Any]:
    """The track summary embedded in a succeeded single-job view."""
    return {
        "id": row["id"],
        "title": row["title"],
        "engine": row["engine"],
        "mode": row["mode"],
        "instrumental": row["instrumental"],
        "measured_duration_seconds": row["measured_duration_seconds"],
        "mime_type": row["mime_type"],
        "licence_class": row["licence_class"],
        "playback_url": playback_url,
    }


def track_view(
    row: Mapping[Any, Any],
    *,
    playback_url: str | None = None,
    stem_urls: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A track as the reference shows it; URLs only on single-track reads."""
    return {
        "id": row["id"],
        "title": row["title"],
        "engine": row["engine"],
        "mode": row["mode"],
        "measured_duration_seconds": row["measured_duration_seconds"],
        "instrumental": row["instrumental"],
        "licence_class": row["licence_class"],
        "created_at": whole_seconds(row["created_at"]),
        "playback_url": playback_url,
        "stem_urls": stem_urls,
    }


def acknowledgement(object_id: str, detail: str) -> dict[str, Any]:
    """The reference's acknowledgement body: ``{"success": true, "id", "detail"}``."""
    return {"success": True, "id": object_id, "detail": detail}
