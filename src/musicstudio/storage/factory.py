"""Build the configured storage from ``MUSICSTUDIO_STORAGE_URL``.

- ``file:///path``: local disk, served by the API's ``/media/`` route.
- ``s3://bucket[/prefix][?endpoint_url=...&region=...&public_endpoint_url=...]``: an
  S3-compatible bucket; credentials come from the standard AWS environment variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlparse

from musicstudio.config import Settings
from musicstudio.security import UrlSigner
from musicstudio.storage.base import Storage
from musicstudio.storage.local import LocalStorage

if TYPE_CHECKING:
    from musicstudio.storage.s3 import S3Storage

_SETTING = "MUSICSTUDIO_STORAGE_URL"
S3_OPTIONS = ("endpoint_url", "region", "public_endpoint_url")


def open_storage(settings: Settings) -> Storage:
    parsed = urlparse(settings.storage_url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)), UrlSigner(settings.secret_key))
    if parsed.scheme == "s3":
        return open_s3(settings.storage_url)
    raise ValueError(f"unsupported {_SETTING} scheme {parsed.scheme!r} (supported: file://, s3://)")


def open_s3(url: str) -> S3Storage:
    """An S3Storage from an ``s3://`` URL; ValueError names what is wrong with it."""
    # Imported here: boto3 takes a noticeable share of start-up, and local disk needs none.
    from musicstudio.storage.s3 import S3Storage

    parsed = urlparse(url)
    if parsed.username is not None or parsed.password is not None:
        raise ValueError(
            f"{_SETTING} must not carry credentials: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or another source boto3 reads) instead"
        )
    bucket = parsed.netloc
    if not bucket:
        raise ValueError(f"{_SETTING} names no bucket: expected s3://bucket[/prefix][?options]")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parsed.query, keep_blank_values=True):
        if name not in S3_OPTIONS:
            raise ValueError(f"unknown {_SETTING} option {name!r} (known: {', '.join(S3_OPTIONS)})")
        if name in options:
            raise ValueError(f"{_SETTING} option {name!r} is given twice")
        if not value:
            raise ValueError(f"{_SETTING} option {name!r} is empty")
        if name.endswith("_url"):
            _check_endpoint(name, value)
        options[name] = value
    return S3Storage(
        bucket,
        unquote(parsed.path),
        endpoint_url=options.get("endpoint_url"),
        region=options.get("region"),
        public_endpoint_url=options.get("public_endpoint_url"),
    )


def _check_endpoint(name: str, value: str) -> None:
    endpoint = urlparse(value)
    if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
        raise ValueError(f"{_SETTING} option {name!r} must be an http(s) URL, got {value!r}")
