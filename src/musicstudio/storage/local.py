"""Local-disk storage; objects are served by the API behind HMAC-signed URLs."""

from __future__ import annotations

import contextlib
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
        """Copy ``source`` to a temp name beside the target, fsync, then rename over the key:
        an error or a crash mid-copy leaves at most a hidden ``.upload-*`` file, never a
        partial object at ``key``. Not retried here: a local write fails for reasons a
        moment's wait does not cure (disk full, permissions, I/O error); the job's retry
        covers the rest."""
        target = self.path_for(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        except OSError as exc:
            raise _failure("store", key, exc) from exc
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, length=1 << 20)
                out.flush()
                os.fsync(out.fileno())
                size = os.fstat(out.fileno()).st_size
            os.replace(tmp_name, target)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise _failure("store", key, exc) from exc
        except BaseException:
            # Whatever else stopped the copy, the temp file must not linger either.
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return size

    def delete(self, key: str) -> None:
        try:
            self.path_for(key).unlink(missing_ok=True)
        except OSError as exc:
            raise _failure("delete", key, exc) from exc

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


def _failure(action: str, key: str, exc: OSError) -> StorageError:
    return StorageError(f"could not {action} {key!r}: {exc.strerror or exc}")


def _fsync_dir(path: Path) -> None:
    """Make a rename durable before the job that points at it is committed. Best effort:
    some filesystems refuse to fsync a directory, and the object is complete either way."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
