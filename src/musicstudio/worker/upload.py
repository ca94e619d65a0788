"""Put a finished render (master, stems, MIDI) into storage, all or nothing per step."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicstudio.engines.base import RenderResult
from musicstudio.storage.base import Storage, StorageError
from musicstudio.storage.media_types import media_type

log = logging.getLogger("musicstudio.worker")


@dataclass
class StoredRender:
    master_key: str
    size_bytes: int
    stems: dict[str, dict[str, Any]] = field(default_factory=dict)
    midi_key: str | None = None
    keys: list[str] = field(default_factory=list)  # every object written (or tried), for clean-up


def upload_render(
    storage: Storage, org_id: str, track_id: str, result: RenderResult
) -> StoredRender:
    """Store the master, the ready stems and the MIDI under the track's prefix; on failure
    remove the ones already written and raise StorageError (nothing half-stored stays)."""
    base = _prefix(org_id, track_id)
    stored = StoredRender(master_key=f"{base}{result.audio_path.suffix}", size_bytes=0)
    with _all_or_nothing(storage, stored):
        stored.size_bytes = _put(
            storage, stored, stored.master_key, result.audio_path, result.mime_type
        )
        _put_stems(storage, base, result.stems, stored)
        if result.midi_path is not None:
            stored.midi_key = f"{base}.mid"
            _put(storage, stored, stored.midi_key, result.midi_path, media_type(stored.midi_key))
    return stored


def upload_stems(
    storage: Storage, org_id: str, track_id: str, stems: dict[str, Path]
) -> StoredRender:
    """Store stems written after the master (``master_key`` stays empty); all or nothing."""
    stored = StoredRender(master_key="", size_bytes=0)
    with _all_or_nothing(storage, stored):
        _put_stems(storage, _prefix(org_id, track_id), stems, stored)
    return stored


@contextmanager
def _all_or_nothing(storage: Storage, stored: StoredRender) -> Iterator[None]:
    """On any exception (not only StorageError), delete what the upload wrote or tried to."""
    try:
        yield
    except BaseException:
        delete_objects(storage, stored.keys)
        raise


def _prefix(org_id: str, track_id: str) -> str:
    return f"tracks/{org_id}/{track_id}"


def _put(storage: Storage, stored: StoredRender, key: str, path: Path, content_type: str) -> int:
    # Listed before the PUT: a request that timed out may still have been stored by the
    # server, and deleting a key that was never written is harmless.
    stored.keys.append(key)
    return storage.put_file(key, path, content_type)


def _put_stems(storage: Storage, base: str, stems: dict[str, Path], stored: StoredRender) -> None:
    for name, path in sorted(stems.items()):
        key = f"{base}/stems/{name}{path.suffix}"
        mime_type = media_type(path)
        size = _put(storage, stored, key, path, mime_type)
        stored.stems[name] = {"storage_key": key, "mime_type": mime_type, "size_bytes": size}


def delete_objects(storage: Storage, keys: list[str]) -> None:
    """Best-effort removal (a leftover object is never served: nothing points at it)."""
    for key in keys:
        try:
            storage.delete(key)
        except StorageError as exc:
            log.warning("orphaned object %s was not removed: %s", key, exc)
