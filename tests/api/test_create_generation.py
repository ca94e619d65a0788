"""POST /generations: the job object, validation, refusal and idempotency."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from musicstudio.services.context import ServiceContext
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import SINGLE_JOB_FIELDS, assert_error, error_fields, job_body


async def test_create_returns_202_with_the_eleven_fields(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    response = await client.post(alice.path("/generations"), json=job_body(), headers=alice.headers)
    assert response.status_code == 202
    job = response.json()
    assert set(job) == SINGLE_JOB_FIELDS
    assert job["recipe"] is None
    assert job["id"].startswith("mgen_") and len(job["id"]) == 31
    assert job["status"] == "queued"
    assert job["progress"] == 0
    assert job["engine"] == "studio"
    assert job["mode"] == "creation"
    assert job["created_at"].endswith("Z") and len(job["created_at"]) == 20
    for field in ("result_track_id", "error_message", "refusal_reason", "playback_url", "track"):
        assert job[field] is None


async def test_focus_mode_is_accepted(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.post(
        alice.path("/generations"), json=job_body(mode="focus"), headers=alice.headers
    )
    assert response.status_code == 202
    assert response.json()["mode"] == "focus"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"engine": "nope"}, "engine"),
        ({"duration_seconds": 0}, "duration_seconds"),
        ({"duration_seconds": -5}, "duration_seconds"),
        ({"duration_seconds": 601}, "duration_seconds"),
        ({"duration_seconds": 2.5}, "duration_seconds"),
        ({"duration_seconds": "30"}, "duration_seconds"),
        ({"lyrics": "la la la"}, "lyrics"),
        ({"mode": "karaoke"}, "mode"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"title": "t" * 201}, "title"),
        ({"style_tags": ["a"] * 21}, "style_tags"),
        ({"style_tags": ["x" * 51]}, "style_tags.0"),
        ({"instrumental": "yes"}, "instrumental"),
        ({"output_format": "aac"}, "output_format"),
        ({"seed_track_id": "mtrack_01jzzzzzzzzzzzzzzzzzzzzzzz"}, "seed_track_id"),
    ],
)
async def test_invalid_requests_are_422_naming_the_field(
    client: httpx.AsyncClient, alice: Caller, overrides: dict[str, object], field: str
) -> None:
    response = await client.post(
        alice.path("/generations"), json=job_body(**overrides), headers=alice.headers
    )
    assert_error(response, 422, "VALIDATION_ERROR")
    assert field in error_fields(response)
    listed = await client.get(alice.path("/generations"), headers=alice.headers)
    assert listed.json()["jobs"] == [], "a rejected request must not create a job"


async def test_missing_fields_and_bad_json_are_422(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    response = await client.post(alice.path("/generations"), json={}, headers=alice.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert {"engine", "prompt", "duration_seconds"} <= set(error_fields(response))

    broken = await client.post(
        alice.path("/generations"),
        content=b'{"engine": "studio", ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_error(broken, 422, "VALIDATION_ERROR")


async def test_lyrics_rejection_says_why(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.post(
        alice.path("/generations"), json=job_body(lyrics="hello"), headers=alice.headers
    )
    assert "cannot sing" in response.json()["error"]["message"]


async def test_policy_refusal_creates_a_refused_job_never_queued(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    response = await client.post(
        alice.path("/generations"),
        json=job_body(prompt="a pop song in the style of Taylor Swift"),
        headers=alice.headers,
    )
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "refused"
    code, _, explanation = job["refusal_reason"].partition(": ")
    assert code == "artist_imitation" and explanation
    assert await Worker(ctx).run_once() is False, "a refused job must never be claimed"
    listed = await client.get(alice.path("/generations?status=refused"), headers=alice.headers)
    assert [j["id"] for j in listed.json()["jobs"]] == [job["id"]]


async def test_idempotency_header_replays_the_same_job(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "order-42"}
    first = await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    again = await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    listed = await client.get(alice.path("/generations"), headers=alice.headers)
    assert len(listed.json()["jobs"]) == 1


async def test_replay_shows_the_job_as_it_is_now(client: httpx.AsyncClient, alice: Caller) -> None:
    headers = {**alice.headers, "Idempotency-Key": "k-now"}
    first = await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    await client.post(
        alice.path(f"/generations/{first.json()['id']}/cancel"), headers=alice.headers
    )
    replay = await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    assert replay.status_code == 202
    assert replay.json()["status"] == "cancelled"


async def test_idempotency_body_key_and_header_precedence(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    by_body = await client.post(
        alice.path("/generations"), json=job_body(idempotency_key="b-1"), headers=alice.headers
    )
    # The body key is not part of the fingerprint: the same body under the header replays.
    by_header = await client.post(
        alice.path("/generations"),
        json=job_body(idempotency_key="ignored"),
        headers={**alice.headers, "Idempotency-Key": "b-1"},
    )
    assert by_header.json()["id"] == by_body.json()["id"]
    other = await client.post(
        alice.path("/generations"), json=job_body(idempotency_key="b-2"), headers=alice.headers
    )
    assert other.json()["id"] != by_body.json()["id"]


async def test_idempotency_key_with_a_different_body_is_422(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "k-1"}
    await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    changed = await client.post(
        alice.path("/generations"), json=job_body(duration_seconds=3), headers=headers
    )
    assert_error(changed, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_defaults_spelled_out_are_the_same_body(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "k-defaults"}
    first = await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    explicit = job_body(mode="creation", instrumental=False, style_tags=[])
    again = await client.post(alice.path("/generations"), json=explicit, headers=headers)
    assert again.json()["id"] == first.json()["id"]


async def test_idempotency_is_scoped_to_org_and_user(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller
) -> None:
    ids = set()
    for caller in (alice, bob, carol):
        response = await client.post(
            caller.path("/generations"),
            json=job_body(),
            headers={**caller.headers, "Idempotency-Key": "shared-key"},
        )
        assert response.status_code == 202
        ids.add(response.json()["id"])
    assert len(ids) == 3


async def test_rejected_request_does_not_consume_the_key(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "k-retry"}
    bad = await client.post(
        alice.path("/generations"), json=job_body(duration_seconds=999), headers=headers
    )
    assert bad.status_code == 422
    good = await client.post(alice.path("/generations"), json=job_body(), headers=headers)
    assert good.status_code == 202


async def test_bad_idempotency_header_is_422(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.post(
        alice.path("/generations"),
        json=job_body(),
        headers={**alice.headers, "Idempotency-Key": "k" * 256},
    )
    assert_error(response, 422, "VALIDATION_ERROR")
    assert "Idempotency-Key" in error_fields(response)


async def test_concurrent_creates_with_one_key_make_one_job(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(
            client.post(alice.path("/generations"), json=job_body(), headers=headers)
            for _ in range(20)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    listed = await client.get(alice.path("/generations"), headers=alice.headers)
    assert len(listed.json()["jobs"]) == 1


async def test_seed_track_of_another_user_is_rejected_like_a_missing_one(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, ctx: ServiceContext
) -> None:
    await client.post(bob.path("/generations"), json=job_body(), headers=bob.headers)
    assert await Worker(ctx).run_once()
    bobs = (await client.get(bob.path("/generations"), headers=bob.headers)).json()["jobs"][0]
    assert bobs["status"] == "succeeded"
    foreign = await client.post(
        alice.path("/generations"),
        json=job_body(seed_track_id=bobs["result_track_id"]),
        headers=alice.headers,
    )
    missing = await client.post(
        alice.path("/generations"),
        json=job_body(seed_track_id="mtrack_01jzzzzzzzzzzzzzzzzzzzzzzz"),
        headers=alice.headers,
    )
    assert_error(foreign, 422, "VALIDATION_ERROR")
    assert foreign.json()["error"]["details"] == missing.json()["error"]["details"]
    assert foreign.json()["error"]["message"] == missing.json()["error"]["message"]
