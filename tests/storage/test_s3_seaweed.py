"""S3Storage against a real S3 server (SeaweedFS): uploads, presigned GETs and their refusals.

Every signature check here is the server's own: a URL it accepts or answers 403 to.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from musicstudio.storage.base import StorageError
from musicstudio.storage.s3 import MAX_PRESIGN_SECONDS, S3Storage
from tests.processes import free_port
from tests.seaweed import SeaweedS3

KEY = "tracks/org_1/trk_1.mp3"


def _storage(s3: SeaweedS3, prefix: str, **overrides: object) -> S3Storage:
    options: dict[str, object] = {"endpoint_url": s3.endpoint_url, "region": s3.region}
    options.update(overrides)
    return S3Storage(s3.bucket, prefix, **options)  # type: ignore[arg-type]


def _audio_file(tmp_path: Path, size: int = 4096) -> Path:
    path = tmp_path / "master.mp3"
    path.write_bytes(os.urandom(size))
    return path


def _stored(s3: SeaweedS3, prefix: str, tmp_path: Path) -> tuple[S3Storage, bytes]:
    storage = _storage(s3, prefix)
    source = _audio_file(tmp_path)
    storage.put_file(KEY, source, "audio/mpeg")
    return storage, source.read_bytes()


def _expires_in(url: str) -> int:
    return int(parse_qs(urlparse(url).query)["X-Amz-Expires"][0])


def _soon(seconds: int = 600) -> int:
    return int(time.time()) + seconds


def test_upload_then_presigned_get_returns_the_bytes(
    s3: SeaweedS3, prefix: str, tmp_path: Path
) -> None:
    storage = _storage(s3, prefix)
    source = _audio_file(tmp_path)
    assert not storage.exists(KEY)
    assert storage.put_file(KEY, source, "audio/mpeg") == 4096
    assert storage.exists(KEY)
    head = s3.client().head_object(Bucket=s3.bucket, Key=f"{prefix}/{KEY}")
    assert head["ContentLength"] == 4096, "stored under the URL's prefix"

    url = storage.playback_url(KEY, _soon(), "http://api.example")
    assert url.startswith(f"{s3.endpoint_url}/{s3.bucket}/{prefix}/{KEY}?")
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.content == source.read_bytes()
    assert response.headers["content-type"] == "audio/mpeg"


def test_range_requests_get_exactly_the_bytes_asked_for(
    s3: SeaweedS3, prefix: str, tmp_path: Path
) -> None:
    storage, data = _stored(s3, prefix, tmp_path)
    url = storage.playback_url(KEY, _soon(), "")
    response = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206, response.text
    assert response.content == data[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(data)}"


def test_a_tampered_signature_is_refused(s3: SeaweedS3, prefix: str, tmp_path: Path) -> None:
    storage, _ = _stored(s3, prefix, tmp_path)
    url = storage.playback_url(KEY, _soon(), "")
    assert httpx.get(url).status_code == 200
    marker = "X-Amz-Signature="
    at = url.index(marker) + len(marker)
    changed = "0" if url[at] != "0" else "1"
    tampered = url[:at] + changed + url[at + 1 :]
    assert tampered != url
    assert httpx.get(tampered).status_code == 403


def test_a_longer_lifetime_than_signed_is_refused(
    s3: SeaweedS3, prefix: str, tmp_path: Path
) -> None:
    storage, _ = _stored(s3, prefix, tmp_path)
    url = storage.playback_url(KEY, _soon(60), "")
    extended = url.replace(f"X-Amz-Expires={_expires_in(url)}", "X-Amz-Expires=3600")
    assert extended != url
    assert httpx.get(extended).status_code == 403


def test_an_expired_url_is_refused(s3: SeaweedS3, prefix: str, tmp_path: Path) -> None:
    storage, _ = _stored(s3, prefix, tmp_path)
    url = storage.playback_url(KEY, int(time.time()) + 1, "")
    assert _expires_in(url) == 1
    time.sleep(2.5)  # past X-Amz-Date (whole seconds) + 1 s
    response = httpx.get(url)
    assert response.status_code == 403
    assert "expired" in response.text.lower()
    assert httpx.get(storage.playback_url(KEY, _soon(), "")).status_code == 200, "a fresh one"


def test_a_url_re_pointed_at_another_key_is_refused(
    s3: SeaweedS3, prefix: str, tmp_path: Path
) -> None:
    storage, _ = _stored(s3, prefix, tmp_path)
    other = "tracks/org_1/trk_2.mp3"
    storage.put_file(other, _audio_file(tmp_path), "audio/mpeg")
    url = storage.playback_url(KEY, _soon(), "")
    re_pointed = url.replace(KEY, other)
    assert re_pointed != url
    assert httpx.get(re_pointed).status_code == 403
    assert httpx.get(storage.playback_url(other, _soon(), "")).status_code == 200


def test_lifetimes_beyond_seven_days_are_capped_and_still_accepted(
    s3: SeaweedS3, prefix: str, tmp_path: Path
) -> None:
    storage, data = _stored(s3, prefix, tmp_path)
    url = storage.playback_url(KEY, _soon(30 * 24 * 3600), "")
    assert _expires_in(url) == MAX_PRESIGN_SECONDS == 604800
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.content == data


def test_delete_removes_the_object(s3: SeaweedS3, prefix: str, tmp_path: Path) -> None:
    storage, _ = _stored(s3, prefix, tmp_path)
    url = storage.playback_url(KEY, _soon(), "")
    storage.delete(KEY)
    assert not storage.exists(KEY)
    assert httpx.get(url).status_code == 404
    storage.delete(KEY)  # already gone: not an error


def test_storing_into_a_missing_bucket_is_a_storage_error(
    s3: SeaweedS3, prefix: str, tmp_path: Path
) -> None:
    storage = S3Storage("no-such-bucket", prefix, endpoint_url=s3.endpoint_url)
    with pytest.raises(StorageError) as raised:
        storage.put_file(KEY, _audio_file(tmp_path), "audio/mpeg")
    message = str(raised.value)
    assert "could not store 'tracks/org_1/trk_1.mp3' in S3 bucket 'no-such-bucket'" in message
    assert "NoSuchBucket" in message
    assert s3.secret_key not in message
    with pytest.raises(StorageError, match="'no-such-bucket' is not reachable"):
        storage.check()


@pytest.mark.usefixtures("s3")
def test_an_unreachable_endpoint_is_a_storage_error(prefix: str, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    storage = S3Storage("bucket", prefix, endpoint_url=endpoint, max_attempts=1)
    with pytest.raises(StorageError) as raised:
        storage.put_file(KEY, _audio_file(tmp_path), "audio/mpeg")
    assert "Could not connect to the endpoint URL" in str(raised.value)
    with pytest.raises(StorageError, match="Could not connect"):
        storage.exists(KEY)
    with pytest.raises(StorageError, match="Could not connect"):
        storage.delete(KEY)
    started = time.monotonic()
    with pytest.raises(StorageError, match="is not reachable"):
        storage.check()
    assert time.monotonic() - started < 5, "readiness answers quickly"


def test_check_passes_when_the_bucket_answers(s3: SeaweedS3, prefix: str) -> None:
    _storage(s3, prefix).check()


def test_wrong_credentials_are_refused(
    s3: SeaweedS3, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stored(s3, prefix, tmp_path)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    storage = _storage(s3, prefix)
    with pytest.raises(StorageError, match="HTTP 403") as raised:
        storage.put_file(KEY, _audio_file(tmp_path), "audio/mpeg")
    assert "not-the-secret" not in str(raised.value)
    # The object is there, but a URL signed with the wrong secret does not open it.
    assert httpx.get(storage.playback_url(KEY, _soon(), "")).status_code == 403
