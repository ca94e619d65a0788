"""MUSICSTUDIO_STORAGE_URL parsing: which backend, and clear errors for bad URLs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from musicstudio.config import Settings
from musicstudio.storage.factory import open_storage
from musicstudio.storage.local import LocalStorage
from musicstudio.storage.s3 import S3Storage
from tests.conftest import make_settings


@pytest.fixture
def base(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


def _open(base: Settings, url: str) -> object:
    return open_storage(replace(base, storage_url=url))


def test_file_urls_give_local_storage(base: Settings, tmp_path: Path) -> None:
    storage = _open(base, f"file://{tmp_path / 'media dir'}")
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "media dir").resolve()


@pytest.mark.usefixtures("fake_credentials")
def test_s3_url_with_every_option(base: Settings) -> None:
    storage = _open(
        base,
        "s3://audio-bucket/music/tracks/?endpoint_url=http://127.0.0.1:8333"
        "&region=eu-central-1&public_endpoint_url=https://cdn.example.com",
    )
    assert isinstance(storage, S3Storage)
    assert storage.bucket == "audio-bucket"
    assert storage.prefix == "music/tracks"
    assert storage.endpoint_url == "http://127.0.0.1:8333"
    assert storage.region == "eu-central-1"
    assert storage.public_endpoint_url == "https://cdn.example.com"
    assert storage.object_key("tracks/o/t.mp3") == "music/tracks/tracks/o/t.mp3"


@pytest.mark.usefixtures("fake_credentials")
def test_s3_url_with_bucket_only(base: Settings) -> None:
    storage = _open(base, "s3://audio-bucket")
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("audio-bucket", "")
    assert storage.endpoint_url is None and storage.public_endpoint_url is None
    assert storage.region == "us-east-1"  # nothing configured anywhere: the SDK's default
    assert storage.object_key("a/b.mp3") == "a/b.mp3"


@pytest.mark.usefixtures("fake_credentials")
def test_region_falls_back_to_the_aws_environment(
    base: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    storage = _open(base, "s3://audio-bucket")
    assert isinstance(storage, S3Storage)
    assert storage.region == "ap-southeast-2"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("s3://bucket?endpoint=http://x:1", "unknown MUSICSTUDIO_STORAGE_URL option 'endpoint'"),
        ("s3://bucket?region=a&region=b", "'region' is given twice"),
        ("s3://bucket?region=", "'region' is empty"),
        ("s3://bucket?endpoint_url=localhost:8333", "must be an http(s) URL"),
        ("s3://bucket?public_endpoint_url=ftp://cdn", "must be an http(s) URL"),
        ("s3:///just/a/prefix", "names no bucket"),
        ("s3://", "names no bucket"),
        ("s3://key:secret@bucket", "must not carry credentials"),
        ("s3://bucket/../escape", "invalid S3 key prefix"),
        ("gs://bucket", "unsupported MUSICSTUDIO_STORAGE_URL scheme 'gs'"),
        ("/srv/media", "unsupported MUSICSTUDIO_STORAGE_URL scheme ''"),
    ],
)
@pytest.mark.usefixtures("fake_credentials")
def test_bad_urls_are_refused_with_the_reason(base: Settings, url: str, complaint: str) -> None:
    with pytest.raises(ValueError) as raised:
        _open(base, url)
    assert complaint in str(raised.value)
