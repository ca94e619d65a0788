"""A succeeded job's playback URL: signed, expiring, seekable, and fresh on every read."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import soundfile as sf

from musicstudio.services.context import ServiceContext
from musicstudio.storage.base import StorageError
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import SINGLE_JOB_FIELDS, assert_error, job_body, local_path


async def _succeeded_job(
    client: httpx.AsyncClient,
    ctx: ServiceContext,
    caller: Caller,
    duration: int = 2,
    **extra: object,
) -> dict[str, object]:
    created = await client.post(
        caller.path("/generations"),
        json=job_body(duration_seconds=duration, **extra),
        headers=caller.headers,
    )
    assert await Worker(ctx).run_once()
    response = await client.get(
        caller.path(f"/generations/{created.json()['id']}"), headers=caller.headers
    )
    job: dict[str, object] = response.json()
    assert job["status"] == "succeeded", job
    return job


async def test_succeeded_job_has_track_and_a_playable_url(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    job = await _succeeded_job(client, ctx, alice)
    assert set(job) == SINGLE_JOB_FIELDS
    recipe = job["recipe"]
    assert isinstance(recipe, dict)
    assert recipe["engine"] == "studio" and recipe["engine_version"]
    assert recipe["soundfont"] and recipe["tempo_bpm"] > 0 and "seed" in recipe
    assert job["progress"] == 100
    track = job["track"]
    assert isinstance(track, dict)
    assert set(track) == {
        "id",
        "title",
        "engine",
        "mode",
        "instrumental",
        "measured_duration_seconds",
        "mime_type",
        "licence_class",
        "playback_url",
    }
    assert track["id"] == job["result_track_id"]
    assert track["mime_type"] == "audio/mpeg"
    assert track["instrumental"] is True  # the studio engine cannot sing
    assert abs(float(track["measured_duration_seconds"]) - 2.0) <= 0.05
    assert track["playback_url"] == job["playback_url"]

    audio = await client.get(local_path(str(job["playback_url"])))
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"
    assert audio.headers["accept-ranges"] == "bytes"
    data, rate = sf.read(io.BytesIO(audio.content))
    assert rate == 44100
    assert abs(len(data) / rate - 2.0) <= 0.05
    assert float(abs(data).max()) > 0.01, "not silence"


async def test_range_requests_seek(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    job = await _succeeded_job(client, ctx, alice)
    url = local_path(str(job["playback_url"]))
    full = (await client.get(url)).content
    part = await client.get(url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(full)}"
    assert part.content == full[100:1100]
    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full[-10:]


async def test_url_ttl_covers_the_track_and_is_minted_fresh(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    job = await _succeeded_job(client, ctx, alice)
    query = parse_qs(urlparse(str(job["playback_url"])).query)
    ttl = int(query["expires"][0]) - time.time()
    assert 895 <= ttl <= 901  # max(900, 2 s + 300 s)
    await asyncio.sleep(1.05)  # expiry has one-second resolution
    again = (
        await client.get(alice.path(f"/generations/{job['id']}"), headers=alice.headers)
    ).json()
    assert again["playback_url"] != job["playback_url"]


async def test_long_tracks_get_urls_that_outlive_them(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    ctx.settings = replace(ctx.settings, playback_ttl_seconds=60)
    job = await _succeeded_job(client, ctx, alice)
    expires = int(parse_qs(urlparse(str(job["playback_url"])).query)["expires"][0])
    assert expires - time.time() >= 300  # duration + 300 s beats the 60 s setting


async def test_tampered_expired_and_repointed_urls_are_403(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    job = await _succeeded_job(client, ctx, alice)
    parsed = urlparse(str(job["playback_url"]))
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}

    bad_sig = {**query, "sig": query["sig"][:-2] + "AA"}
    assert_error(await client.get(f"{parsed.path}?{urlencode(bad_sig)}"), 403, "INVALID_SIGNATURE")

    longer = {**query, "expires": str(int(query["expires"]) + 3600)}
    assert_error(await client.get(f"{parsed.path}?{urlencode(longer)}"), 403, "INVALID_SIGNATURE")

    other_path = parsed.path.replace(".mp3", "x.mp3")
    assert_error(await client.get(f"{other_path}?{parsed.query}"), 403, "INVALID_SIGNATURE")

    assert_error(await client.get(parsed.path), 403, "INVALID_SIGNATURE")

    signer = ctx.storage.signer
    past = signer.sign(parsed.path, expires=int(time.time()) - 1)
    assert_error(await client.get(f"{parsed.path}?{urlencode(past)}"), 403, "INVALID_SIGNATURE")


async def test_list_view_never_carries_urls(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    job = await _succeeded_job(client, ctx, alice)
    listed = (
        await client.get(
            alice.path("/generations?status=succeeded&limit=20"), headers=alice.headers
        )
    ).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    assert listed["jobs"][0]["playback_url"] is None
    assert listed["jobs"][0]["track"] is None
    assert listed["jobs"][0]["result_track_id"] == job["result_track_id"]


async def test_other_output_formats_are_served_with_their_type(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller
) -> None:
    job = await _succeeded_job(client, ctx, alice, output_format="flac")
    track = job["track"]
    assert isinstance(track, dict) and track["mime_type"] == "audio/flac"
    audio = await client.get(local_path(str(job["playback_url"])))
    assert audio.headers["content-type"] == "audio/flac"
    info = sf.info(io.BytesIO(audio.content))
    assert info.format == "FLAC" and abs(info.duration - 2.0) <= 0.05


async def test_storage_that_cannot_sign_is_a_503_envelope(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await _succeeded_job(client, ctx, alice)

    def cannot_sign(key: str, expires_at: int, base_url: str) -> str:
        raise StorageError("could not sign a URL for 'x' in S3 bucket 'b': NoCredentialsError")

    monkeypatch.setattr(ctx.storage, "playback_url", cannot_sign)
    response = await client.get(alice.path(f"/generations/{job['id']}"), headers=alice.headers)
    body = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "NoCredentials" not in response.text and "bucket" not in str(body), "reason only logged"
