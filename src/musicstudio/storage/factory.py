"""Build the configured storage from ``MUSICSTUDIO_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from musicstudio.config import Settings
from musicstudio.security import UrlSigner
from musicstudio.storage.local import LocalStorage


def open_storage(settings: Settings) -> LocalStorage:
    parsed = urlparse(settings.storage_url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)), UrlSigner(settings.secret_key))
    raise ValueError(
        f"unsupported MUSICSTUDIO_STORAGE_URL scheme {parsed.scheme!r} (supported: file://)"
    )
