"""S3-compatible storage: objects live in a bucket; playback URLs are SigV4 presigned GETs.

Credentials come from boto3's default chain (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, a profile, an instance role, ...); nothing here reads them.
One set of clients is made per storage object and shared by every thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from musicstudio.storage.base import StorageError, validate_key

# SigV4 refuses presigned URLs that live longer than seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
DEFAULT_REGION = "us-east-1"
# Tries per request, the first included. botocore's standard mode retries connection errors,
# 5xx answers and throttling with jittered exponential back-off (50 ms base, 1 s when
# throttled), so five tries ride out a sub-second blip before StorageError reaches the
# worker, whose job retry (a re-render) is far dearer. A per-client retry quota stops retry
# storms during a long outage.
DEFAULT_ATTEMPTS = 5
# What S3 servers answer for an object that is not there (HeadObject has no body: "404").
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _client_config(*, connect_timeout: float, read_timeout: float, max_attempts: int) -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _reason(exc: Exception) -> str:
    """What went wrong, without credentials: the S3 error code and message, or botocore's."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or "error"
        message = error.get("Message")
        detail = f"{code} ({message})" if message and message != code else code
        return f"HTTP {status} {detail}" if status else detail
    return str(exc) or type(exc).__name__


class S3Storage:
    """Objects under ``prefix`` in ``bucket`` of an S3-compatible server.

    ``endpoint_url`` is where uploads go (None: AWS itself); ``public_endpoint_url`` is the
    host clients download from. SigV4 signs the host, so playback URLs are signed by a
    client pointed at the public endpoint; presigning needs no network.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        public_endpoint_url: str | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except StorageError as exc:
                raise ValueError(f"invalid S3 key prefix {prefix!r}") from exc
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.public_endpoint_url = public_endpoint_url
        session = boto3.session.Session()
        self.region = region or session.region_name or DEFAULT_REGION
        config = _client_config(
            connect_timeout=connect_timeout, read_timeout=read_timeout, max_attempts=max_attempts
        )
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, config=config
        )
        self._signer: Any = self._client
        if public_endpoint_url:
            self._signer = session.client(
                "s3", endpoint_url=public_endpoint_url, region_name=self.region, config=config
            )
        # Readiness probes want a quick answer: one attempt, short timeouts.
        probe_config = _client_config(
            connect_timeout=min(connect_timeout, 2), read_timeout=5, max_attempts=1
        )
        self._probe: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, config=probe_config
        )

    def object_key(self, key: str) -> str:
        """The S3 key of storage key ``key``: the prefix, then the key."""
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, source: Path, content_type: str) -> int:
        # An S3 PUT is all or nothing: readers never see a partial object.
        name = self.object_key(key)
        try:
            size = source.stat().st_size
            with source.open("rb") as body:
                self._client.put_object(
                    Bucket=self.bucket, Key=name, Body=body, ContentType=content_type
                )
        except OSError as exc:
            raise StorageError(f"could not read the file to store as {key!r}: {exc}") from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("store", key, exc) from exc
        return size

    def delete(self, key: str) -> None:
        name = self.object_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("delete", key, exc) from exc

    def exists(self, key: str) -> bool:
        name = self.object_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise self._failure("look up", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failure("look up", key, exc) from exc
        return True

    def playback_url(self, key: str, expires_at: int, base_url: str) -> str:
        """A presigned GET (``base_url`` is not used: clients fetch from the S3 host)."""
        name = self.object_key(key)
        ttl = min(max(expires_at - int(time.time()), 1), MAX_PRESIGN_SECONDS)
        try:
            url: str = self._signer.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": name}, ExpiresIn=ttl
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("sign a URL for", key, exc) from exc
        return url

    def check(self) -> None:
        try:
            self._probe.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"S3 bucket {self.bucket!r} is not reachable: {_reason(exc)}"
            ) from exc

    def _failure(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(
            f"could not {action} {key!r} in S3 bucket {self.bucket!r}: {_reason(exc)}"
        )
