"""Storage failing under a running job: transient errors are retried inside the upload; a
lasting failure fails the job with the user-safe message after its attempts; nothing stored
by a failed upload stays, and nothing half-written ever sits at a track's key.

A real Worker runs the real studio engine in process, against a real SeaweedFS server (one of
the test's own where the test stops and restarts it) or local disk. Faults are injected only
where a real one cannot be made on demand: a copy that dies mid-file, a write whose answer is
lost, and refused sends through botocore's own ``before-send`` hook (so botocore's real retry
logic handles them). Local disk is not retried inside the upload (see LocalStorage.put_file).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError
from sqlalchemy import select

from musicstudio.db.tables import tracks
from musicstudio.engines.base import (
    CancelledFn,
    Engine,
    EngineCapabilities,
    Licence,
    ProgressFn,
    RenderRequest,
    RenderResult,
)
from musicstudio.engines.registry import EngineRegistry
from musicstudio.security import UrlSigner
from musicstudio.services.context import ServiceContext
from musicstudio.storage import local
from musicstudio.storage.base import StorageError
from musicstudio.storage.factory import open_s3
from musicstudio.storage.s3 import DEFAULT_ATTEMPTS, S3Storage
from musicstudio.worker.runner import STORAGE_FAILURE, Worker
from musicstudio.worker.upload import upload_render
from tests.conftest import Caller
from tests.helpers import assert_error, job_row
from tests.processes import wait_for
from tests.seaweed import SeaweedS3, seaweed_s3, shut_down, weed_binary, weed_command
from tests.worker.test_runner import _drain, _submit


class _ThenOnce:
    """The studio engine; after its first render, ``action`` runs (storage fails mid-job)."""

    def __init__(self, engine: Engine, action: Callable[[], None]) -> None:
        self.key = engine.key
        self._engine = engine
        self._action: Callable[[], None] | None = action

    def capabilities(self) -> EngineCapabilities:
        return self._engine.capabilities()

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancelled: CancelledFn
    ) -> RenderResult:
        result = self._engine.render(request, progress, cancelled)
        action, self._action = self._action, None
        if action is not None:
            action()
        return result


def _use_s3(ctx: ServiceContext, server: SeaweedS3, prefix: str) -> S3Storage:
    """Point the context (worker and API alike) at ``server``, built as the factory builds it."""
    storage = open_s3(server.storage_url(prefix))
    ctx.storage = storage
    return storage


def _sends(
    storage: S3Storage, operation: str, refuse: Callable[[str, int], bool] = lambda *_: False
) -> list[str]:
    """The URL of every HTTP try of ``operation`` (retries included), in order. A try that
    ``refuse(url, number)`` picks fails as a refused connection would, before it is sent."""
    urls: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        urls.append(request.url)
        if refuse(request.url, len(urls)):
            raise EndpointConnectionError(endpoint_url=request.url)

    storage._client.meta.events.register(f"before-send.s3.{operation}", before_send)
    return urls


def _track_ids(urls: list[str]) -> set[str]:
    """Track ids in the master keys the worker tried to store (``.../<track id>.mp3``)."""
    return {Path(urlparse(url).path).stem for url in urls if url.endswith(".mp3")}


def _object_keys(server: SeaweedS3, prefix: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=server.bucket, Prefix=f"{prefix}/")
    return [item["Key"] for item in listing.get("Contents", [])]


async def _download(url: str) -> bytes:
    """GET a playback URL from the S3 server itself, as a player would."""
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    return response.content


async def _track_rows(ctx: ServiceContext) -> list[Any]:
    async with ctx.db.read() as conn:
        return list((await conn.execute(select(tracks))).all())


async def _assert_failed_safely(
    ctx: ServiceContext,
    client: httpx.AsyncClient,
    caller: Caller,
    job_id: str,
    tried: Iterable[str] = (),
) -> dict[str, Any]:
    """Failed with exactly the user-safe message, no track, and no URL for any track id
    the worker tried; the job's view through the API."""
    response = await client.get(caller.path(f"/generations/{job_id}"), headers=caller.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] == "failed"
    assert job["error_message"] == STORAGE_FAILURE
    assert (job["playback_url"], job["result_track_id"], job["track"]) == (None, None, None)
    assert await _track_rows(ctx) == []
    for track_id in tried:
        missing = await client.get(caller.path(f"/tracks/{track_id}"), headers=caller.headers)
        assert_error(missing, 404, "RESOURCE_NOT_FOUND")
    listed = await client.get(caller.path("/tracks"), headers=caller.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []
    return job


@pytest.fixture
def own_weed(tmp_path: Path, s3: SeaweedS3) -> Iterator[SeaweedS3]:
    """A server of this test's own, free to be stopped (``s3`` only sets the credentials,
    which every test server shares)."""
    with seaweed_s3(tmp_path / "weed") as server:
        yield server


def _start_again(server: SeaweedS3) -> None:
    """Start the stopped weed again on its ports, identities and data: the same endpoint
    comes back (the helper's start-up picks fresh ports, which a running client won't use)."""
    workdir = server.log_path.parent
    binary = weed_binary()
    assert binary is not None
    command = weed_command(binary, workdir, server.ports, workdir / "s3.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = server.client()

    def serving() -> bool:
        try:
            client.head_bucket(Bucket=server.bucket)
        except Exception:
            return False
        return True

    wait_for(serving, 30, f"weed to serve again (log: {server.log_path})")


async def test_s3_outage_mid_job_fails_it_safely_and_a_later_job_succeeds(
    ctx: ServiceContext, alice: Caller, client: httpx.AsyncClient, own_weed: SeaweedS3, prefix: str
) -> None:
    storage = _use_s3(ctx, own_weed, prefix)
    puts = _sends(storage, "PutObject")
    studio = ctx.engines.get("studio")
    assert studio is not None
    # The server stops after the first render is done and before its upload begins.
    ctx.engines = EngineRegistry({"studio": _ThenOnce(studio, lambda: shut_down(own_weed))})

    job_id = await _submit(ctx, alice)
    row = await _drain(ctx, job_id)

    assert row["status"] == "failed"
    assert row["attempt"] == ctx.settings.max_attempts == 3
    # Every attempt tried the master DEFAULT_ATTEMPTS times (botocore's retries), then gave up.
    assert len(puts) == ctx.settings.max_attempts * DEFAULT_ATTEMPTS
    tried = _track_ids(puts)
    assert len(tried) == ctx.settings.max_attempts, "a fresh track id per attempt"
    job = await _assert_failed_safely(ctx, client, alice, job_id, tried)
    for leak in (own_weed.endpoint_url, "127.0.0.1", own_weed.bucket, prefix, "connect"):
        assert leak not in str(job), leak

    _start_again(own_weed)
    assert _object_keys(own_weed, prefix) == [], "nothing under any track's prefix"

    # The same storage client, the same endpoint: the next job goes through.
    job_id = await _submit(ctx, alice)
    row = await _drain(ctx, job_id)
    assert row["status"] == "succeeded" and row["attempt"] == 1
    [track] = await _track_rows(ctx)
    keys = _object_keys(own_weed, prefix)
    assert f"{prefix}/{track.storage_key}" in keys and f"{prefix}/{track.midi_key}" in keys
    response = await client.get(alice.path(f"/generations/{job_id}"), headers=alice.headers)
    assert len(await _download(response.json()["playback_url"])) == track.size_bytes


async def test_a_transient_s3_failure_is_retried_within_the_same_attempt(
    ctx: ServiceContext, alice: Caller, client: httpx.AsyncClient, s3: SeaweedS3, prefix: str
) -> None:
    storage = _use_s3(ctx, s3, prefix)
    failures = DEFAULT_ATTEMPTS - 1  # the last try botocore allows is the one that succeeds
    puts = _sends(storage, "PutObject", refuse=lambda _, number: number <= failures)

    job_id = await _submit(ctx, alice)
    assert await Worker(ctx).run_once()

    row = await job_row(ctx, job_id)
    assert row["status"] == "succeeded" and row["attempt"] == 1, "no second attempt needed"
    [track] = await _track_rows(ctx)
    master = [url for url in puts if url.endswith(track.storage_key)]
    assert len(master) == failures + 1, "the master was sent again after each refused try"
    assert puts[: failures + 1] == master
    head = s3.client().head_object(Bucket=s3.bucket, Key=f"{prefix}/{track.storage_key}")
    assert head["ContentLength"] == track.size_bytes
    response = await client.get(alice.path(f"/generations/{job_id}"), headers=alice.headers)
    assert len(await _download(response.json()["playback_url"])) == track.size_bytes


async def test_a_failed_midi_upload_removes_the_master_already_stored_in_s3(
    ctx: ServiceContext, alice: Caller, client: httpx.AsyncClient, s3: SeaweedS3, prefix: str
) -> None:
    storage = _use_s3(ctx, s3, prefix)
    puts = _sends(storage, "PutObject", refuse=lambda url, _: url.endswith(".mid"))
    deletes = _sends(storage, "DeleteObject")
    ctx.settings = replace(ctx.settings, max_attempts=1)  # the clean-up is the point here

    job_id = await _submit(ctx, alice)
    row = await _drain(ctx, job_id)

    assert row["status"] == "failed" and row["attempt"] == 1
    [master] = [url for url in puts if url.endswith(".mp3")]
    assert len([url for url in puts if url.endswith(".mid")]) == DEFAULT_ATTEMPTS
    assert master in deletes, "the stored master was deleted again"
    tried = _track_ids(puts)
    assert len(tried) == 1
    await _assert_failed_safely(ctx, client, alice, job_id, tried)
    assert _object_keys(s3, prefix) == []


async def test_a_local_write_dying_mid_file_leaves_nothing_at_any_key(
    ctx: ServiceContext, alice: Caller, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = local.shutil.copyfileobj
    seen: list[dict[str, Any]] = []

    def dies_on_the_midi(src: IO[bytes], out: IO[bytes], length: int = 0) -> None:
        if not str(src.name).endswith(".mid"):
            return copy(src, out, length)
        out.write(src.read(20))
        out.flush()
        # What is on disk at this moment: the partial temp file, and the master stored.
        media = ctx.settings.data_dir / "media"
        files = {p.name for p in media.rglob("*") if p.is_file()}
        seen.append({"written": os.fstat(out.fileno()).st_size, "files": files})
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(local.shutil, "copyfileobj", dies_on_the_midi)
    job_id = await _submit(ctx, alice)
    row = await _drain(ctx, job_id)

    assert row["status"] == "failed" and row["attempt"] == ctx.settings.max_attempts
    assert len(seen) == ctx.settings.max_attempts, "no retry inside a local upload"
    tried = set()
    for moment in seen:
        assert moment["written"] == 20, "the MIDI was partly written when the disk filled"
        [master] = [name for name in moment["files"] if name.endswith(".mp3")]
        assert len([name for name in moment["files"] if name.startswith(".upload-")]) == 1
        assert not any(name.endswith(".mid") for name in moment["files"]), "not at its key"
        tried.add(master.removesuffix(".mp3"))
    assert len(tried) == ctx.settings.max_attempts
    await _assert_failed_safely(ctx, client, alice, job_id, tried)
    media = ctx.settings.data_dir / "media"
    assert [p for p in media.rglob("*") if p.is_file()] == [], "master and temp file removed"


async def test_a_track_directory_that_cannot_be_made_fails_the_job_safely(
    ctx: ServiceContext, alice: Caller, client: httpx.AsyncClient
) -> None:
    # A real refusal from the OS: a file stands where the organization's directory goes.
    blocker = ctx.settings.data_dir / "media" / "tracks" / alice.org_id
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"in the way")
    job_id = await _submit(ctx, alice)
    row = await _drain(ctx, job_id)
    assert row["status"] == "failed" and row["attempt"] == ctx.settings.max_attempts
    await _assert_failed_safely(ctx, client, alice, job_id)
    assert blocker.read_bytes() == b"in the way"


def _local(tmp_path: Path) -> local.LocalStorage:
    return local.LocalStorage(tmp_path / "media", UrlSigner(b"k"))


def test_any_error_mid_copy_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _local(tmp_path)
    source = tmp_path / "a.mp3"
    source.write_bytes(b"x" * 4096)

    def dies(src: IO[bytes], out: IO[bytes], length: int = 0) -> None:
        out.write(src.read(100))
        raise MemoryError  # not an OSError: still no leftovers

    monkeypatch.setattr(local.shutil, "copyfileobj", dies)
    with pytest.raises(MemoryError):
        storage.put_file("tracks/o/a.mp3", source, "audio/mpeg")
    assert [p.name for p in storage.root.rglob("*") if p.is_file()] == []


def test_a_key_that_cannot_be_deleted_is_a_storage_error(tmp_path: Path) -> None:
    storage = _local(tmp_path)
    (storage.root / "tracks" / "o.mp3").mkdir(parents=True)  # a directory at the key
    with pytest.raises(StorageError, match=r"could not delete 'tracks/o\.mp3'"):
        storage.delete("tracks/o.mp3")


class _LostAnswer(local.LocalStorage):
    """Stores the MIDI, then reports a failure, as a PUT whose answer timed out does."""

    def put_file(self, key: str, source: Path, content_type: str) -> int:
        size = super().put_file(key, source, content_type)
        if key.endswith(".mid"):
            raise StorageError("read timeout")
        return size


def test_an_upload_that_fails_removes_every_object_it_wrote_or_tried(tmp_path: Path) -> None:
    storage = _LostAnswer(tmp_path / "media", UrlSigner(b"k"))
    files = {name: tmp_path / name for name in ("m.mp3", "bass.flac", "m.mid")}
    for path in files.values():
        path.write_bytes(b"data")
    result = RenderResult(
        audio_path=files["m.mp3"],
        mime_type="audio/mpeg",
        measured_duration_seconds=1.0,
        title="t",
        licence=Licence("unclear", "test", False, True),
        stems={"bass": files["bass.flac"]},
        midi_path=files["m.mid"],
    )
    with pytest.raises(StorageError, match="read timeout"):
        upload_render(storage, "org_1", "trk_1", result)
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []
