"""Content types of the files the service stores, by file suffix."""

from __future__ import annotations

from pathlib import PurePath

MEDIA_TYPES = {
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".mid": "audio/midi",
}
DEFAULT_MEDIA_TYPE = "application/octet-stream"


def media_type(path: PurePath | str) -> str:
    """The content type for a stored file name (``application/octet-stream`` if unknown)."""
    return MEDIA_TYPES.get(PurePath(path).suffix.lower(), DEFAULT_MEDIA_TYPE)
