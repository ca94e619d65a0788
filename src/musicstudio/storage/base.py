"""The storage interface the service and workers speak."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """Storage failed; the message is safe to log, never shown to a client as is."""


def validate_key(key: str) -> None:
    """Keys are relative, ``/``-separated names without empty, ``.`` or ``..`` parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid storage key {key!r}")


class Storage(Protocol):
    def put_file(self, key: str, source: Path, content_type: str) -> int:
        """Store ``source`` under ``key`` atomically (never half-written); returns its size."""
        ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def playback_url(self, key: str, expires_at: int, base_url: str) -> str:
        """A URL that lets anyone GET the object until ``expires_at`` (epoch seconds)."""
        ...

    def check(self) -> None:
        """Raise StorageError unless the storage answers (for readiness probes; blocking)."""
        ...
