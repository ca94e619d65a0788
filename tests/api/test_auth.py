"""Authentication and scoping: 401s, the one 403, and 404 identical to missing."""

from __future__ import annotations

import httpx
import pytest

from musicstudio.errors import NotFound
from musicstudio.security import generate_api_key
from musicstudio.services import accounts
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import assert_error, job_body, without_request_ids


async def test_missing_key_is_401_authentication_required(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    response = await client.get(alice.path("/generations"))
    assert_error(response, 401, "AUTHENTICATION_REQUIRED")


async def test_unknown_and_malformed_keys_are_401_invalid_api_key(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    for key in (generate_api_key(), "not-a-key", alice.api_key[:-1]):
        response = await client.get(alice.path("/generations"), headers={"X-API-Key": key})
        assert_error(response, 401, "INVALID_API_KEY")


async def test_bearer_header_works_like_x_api_key(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.get(
        alice.path("/generations"), headers={"Authorization": f"Bearer {alice.api_key}"}
    )
    assert response.status_code == 200
    assert response.json() == {"jobs": [], "limit": 50, "offset": 0}


async def test_auth_is_checked_before_validation(client: httpx.AsyncClient, alice: Caller) -> None:
    response = await client.get(alice.path("/generations?limit=0"))
    assert_error(response, 401, "AUTHENTICATION_REQUIRED")


async def test_other_org_path_is_403_whether_or_not_it_exists(
    client: httpx.AsyncClient, alice: Caller, carol: Caller
) -> None:
    existing = await client.get(carol.path("/generations"), headers=alice.headers)
    missing = await client.get("/v1/music/org_doesnotexist/generations", headers=alice.headers)
    assert_error(existing, 403, "ORGANIZATION_ACCESS_DENIED")
    assert_error(missing, 403, "ORGANIZATION_ACCESS_DENIED")
    assert without_request_ids(existing) == without_request_ids(missing)


async def test_foreign_job_is_404_identical_to_missing(
    client: httpx.AsyncClient, alice: Caller, bob: Caller, carol: Caller
) -> None:
    created = await client.post(alice.path("/generations"), json=job_body(), headers=alice.headers)
    job_id = created.json()["id"]
    missing_id = "mgen_01jzzzzzzzzzzzzzzzzzzzzzzz"

    for caller in (bob, carol):
        for suffix, method in (("", "GET"), ("/cancel", "POST")):
            foreign = await client.request(
                method, caller.path(f"/generations/{job_id}{suffix}"), headers=caller.headers
            )
            missing = await client.request(
                method, caller.path(f"/generations/{missing_id}{suffix}"), headers=caller.headers
            )
            assert_error(foreign, 404, "RESOURCE_NOT_FOUND")
            assert without_request_ids(foreign) == without_request_ids(missing)
            assert foreign.headers.keys() == missing.headers.keys()

    # Carol on Alice's organization path: 403, saying nothing about the job.
    on_victim_path = await client.get(alice.path(f"/generations/{job_id}"), headers=carol.headers)
    assert_error(on_victim_path, 403, "ORGANIZATION_ACCESS_DENIED")

    # Nobody else's list shows it; the cancel attempts changed nothing.
    for caller in (bob, carol):
        listed = await client.get(caller.path("/generations"), headers=caller.headers)
        assert listed.json()["jobs"] == []
    mine = await client.get(alice.path(f"/generations/{job_id}"), headers=alice.headers)
    assert mine.json()["status"] == "queued"


async def test_every_response_has_a_request_id(client: httpx.AsyncClient, alice: Caller) -> None:
    ok = await client.get("/healthz")
    assert len(ok.headers["x-request-id"]) >= 16
    echoed = await client.get("/healthz", headers={"X-Request-ID": "client-chosen-1"})
    assert echoed.headers["x-request-id"] == "client-chosen-1"
    bogus = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert bogus.headers["x-request-id"] != "bad id\twith spaces"


async def test_a_user_may_hold_several_keys_issued_only_within_their_organization(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, carol: Caller
) -> None:
    issued = await accounts.create_key(ctx, alice.org_id, alice.user_id, "rotation")
    assert issued.api_key != alice.api_key and issued.user_id == alice.user_id
    for key in (alice.api_key, issued.api_key):
        response = await client.get(alice.path("/generations"), headers={"X-API-Key": key})
        assert response.status_code == 200
    names = {k["name"] for k in await accounts.list_keys(ctx, alice.org_id)}
    assert names == {"default", "rotation"}
    with pytest.raises(NotFound):  # a user is only found within their own organization
        await accounts.create_key(ctx, carol.org_id, alice.user_id, "smuggled")
