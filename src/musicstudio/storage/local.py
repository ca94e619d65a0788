"""Local-disk storage; objects are served by the API behind HMAC-signed URLs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

from musicstudio.security import UrlSigner
from musicstudio.storage.base import StorageError, validate_key

MEDIA_ROUTE_PREFIX = "/media/"


class LocalStorage:
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.signer = signer
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """The file of ``key``; keys cannot escape the root."""
        validate_key(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"invalid storage key {key!r}")
        return path

    def put_file(self, key: str, source: Path, content_type: str) -> int:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy to a temp name beside the target, flush, then rename: readers see all or nothing.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, length=1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise StorageError(f"could not store {key!r}: {exc.strerror}") from exc
        return target.stat().st_size

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageError(f"storage root {str(self.root)!r} is not a directory")

    def url_path(self, key: str) -> str:
        return MEDIA_ROUTE_PREFIX + quote(key)

    def playback_url(self, key: str, expires_at: int, base_url: str) -> str:
        path = self.url_path(key)
        query = urlencode(self.signer.sign(path, expires_at))
        return f"{base_url.rstrip('/')}{path}?{query}"
