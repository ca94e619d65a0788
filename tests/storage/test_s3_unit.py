"""S3Storage without a real server: presigning is offline; moto stands in for quick checks.

Nothing here proves a signature is accepted: that is test_s3_seaweed.py's job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws

from musicstudio.storage.base import StorageError
from musicstudio.storage.s3 import MAX_PRESIGN_SECONDS, S3Storage

pytestmark = pytest.mark.usefixtures("fake_credentials")


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_playback_urls_are_signed_for_the_public_endpoint() -> None:
    storage = S3Storage(
        "audio",
        "prod",
        endpoint_url="http://seaweed.internal:8333",
        public_endpoint_url="https://cdn.example.com",
    )
    url = storage.playback_url("tracks/o/t.mp3", int(time.time()) + 900, "http://api.example")
    assert url.startswith("https://cdn.example.com/audio/prod/tracks/o/t.mp3?")
    query = _query(url)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-SignedHeaders"] == "host"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert query["X-Amz-Credential"].endswith("/us-east-1/s3/aws4_request")
    assert 895 <= int(query["X-Amz-Expires"]) <= 900


def test_without_a_public_endpoint_urls_point_at_the_endpoint() -> None:
    storage = S3Storage("audio", endpoint_url="http://127.0.0.1:8333", region="eu-west-1")
    url = storage.playback_url("a/b.mp3", int(time.time()) + 60, "http://api.example")
    assert url.startswith("http://127.0.0.1:8333/audio/a/b.mp3?")
    assert "/eu-west-1/s3/aws4_request" in _query(url)["X-Amz-Credential"]


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [(30 * 24 * 3600, MAX_PRESIGN_SECONDS), (-3600, 1), (0, 1)],
)
def test_url_lifetime_is_clamped_to_what_sigv4_allows(ahead: int, expected: int) -> None:
    storage = S3Storage("audio", endpoint_url="http://127.0.0.1:8333")
    url = storage.playback_url("a/b.mp3", int(time.time()) + ahead, "")
    assert int(_query(url)["X-Amz-Expires"]) == expected


@pytest.mark.parametrize("key", ["", "/abs.mp3", "a//b.mp3", "a/../b.mp3", "./a.mp3", "a/"])
def test_invalid_keys_are_refused_like_local_storage(key: str, tmp_path: Path) -> None:
    storage = S3Storage("audio", endpoint_url="http://127.0.0.1:8333")
    source = tmp_path / "x.mp3"
    source.write_bytes(b"x")
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put_file(key, source, "audio/mpeg")
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.playback_url(key, int(time.time()) + 60, "")


@pytest.fixture
def moto_bucket() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="audio")
        yield client


def test_put_exists_delete_round_trip_in_moto(moto_bucket: Any, tmp_path: Path) -> None:
    storage = S3Storage("audio", "music")
    source = tmp_path / "t.flac"
    source.write_bytes(b"fLaC" + bytes(1000))
    assert storage.put_file("tracks/o/t.flac", source, "audio/flac") == 1004
    head = moto_bucket.head_object(Bucket="audio", Key="music/tracks/o/t.flac")
    assert head["ContentType"] == "audio/flac"
    assert head["ContentLength"] == 1004
    assert storage.exists("tracks/o/t.flac")
    assert not storage.exists("tracks/o/other.flac")
    storage.delete("tracks/o/t.flac")
    assert not storage.exists("tracks/o/t.flac")
    storage.delete("tracks/o/t.flac")  # deleting what is gone is fine, as on local disk
    storage.check()


def test_missing_source_file_is_a_storage_error(moto_bucket: Any, tmp_path: Path) -> None:
    storage = S3Storage("audio")
    with pytest.raises(StorageError, match="could not read the file"):
        storage.put_file("a.mp3", tmp_path / "missing.mp3", "audio/mpeg")
