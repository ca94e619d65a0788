"""Contract fuzzing: every operation of the OpenAPI document, given any input, answers as the
document says.

Schemathesis generates requests from the app's own ``/openapi.json`` (valid and invalid ones:
odd types, boundary values, NUL bytes, non-UTF-8 bodies, unexpected methods) and sends them to
the real app in process, over a migrated SQLite database. The caller is authenticated and on
its own organization's path, so requests get past authorization; object ids are half the time
ones of real objects (a rendered track, its job, a collection, share links, a focus session) so
the success paths are checked too, and half the time random (404s). Every response must be no
5xx, of a documented status, content type and headers, match its declared schema, and every
4xx must be the error envelope carrying the request id. The app is the one ``create_app``
serves, hot routes (``api/hot.py``) included.

The defects the fuzzing found are also pinned below with plain requests, so they stay fixed
whatever the generator happens to draw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import BaseSchema, Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from musicstudio.api.app import create_app
from musicstudio.api.routes import shares
from musicstudio.config import Settings
from musicstudio.services.context import ServiceContext
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import assert_error, error_fields, job_body
from tests.scale import scaled

# Random examples per operation (the boundary and explicit-example phases add their own).
EXAMPLES = scaled(25, 250)
SEED = 20260628
# How often a path or body id is one of a real object rather than a random string.
REAL_ID_PROBABILITY = 0.5
ORG = "/v1/music/{organization_id}"


@schemathesis.check
def error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is the reference's envelope, its ``trace_id`` the response's x-request-id."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"a {response.status_code} body is not an object"
    assert body.get("success") is False, "an error body without success: false"
    error = body.get("error")
    assert isinstance(error, dict), "an error body without its error object"
    assert isinstance(error.get("code"), str) and error["code"], "error.code is missing"
    assert error.get("status") == response.status_code, "error.status is not the HTTP status"
    request_ids = response.headers.get("x-request-id") or [None]
    assert error.get("trace_id") == request_ids[0], "error.trace_id is not the x-request-id"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    error_envelope,
    # Input the document calls invalid is refused (with one of REFUSALS), never served.
    negative_data_rejection,
    # A method a path does not have is a 405 whose Allow lists the ones it has.
    unsupported_method,
    allow_header_conformance,
]
REFUSALS = [401, 403, 404, 405, 409, 413, 422, 429]


@dataclass(frozen=True)
class Seeded:
    """Real objects of the caller's; ``doomed_*`` ones are only offered to the deletes, so
    the other operations keep finding theirs."""

    job_id: str
    track_id: str
    doomed_track_id: str
    collection_id: str
    doomed_collection_id: str
    session_id: str
    tokens: tuple[str, str]
    doomed_share_id: str


@pytest.fixture
async def seeded(client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller) -> Seeded:
    async def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await client.post(alice.path(path), json=body, headers=alice.headers)
        assert response.status_code in (201, 202), response.text
        return dict(response.json())

    jobs = [(await post("/generations", job_body(duration_seconds=1)))["id"] for _ in range(2)]
    worker = Worker(ctx)
    assert await worker.run_once() and await worker.run_once()
    tracks = []
    for job_id in jobs:
        job = (await client.get(alice.path(f"/generations/{job_id}"), headers=alice.headers)).json()
        assert job["status"] == "succeeded", job
        tracks.append(job["result_track_id"])
    collection = (await post("/collections", {"name": "kept", "cover_track_id": tracks[0]}))["id"]
    await post(f"/collections/{collection}/tracks", {"track_id": tracks[0]})
    return Seeded(
        job_id=jobs[0],
        track_id=tracks[0],
        doomed_track_id=tracks[1],
        collection_id=collection,
        doomed_collection_id=(await post("/collections", {"name": "doomed"}))["id"],
        session_id=(await post("/focus/sessions", {"goal": "relax", "target_minutes": 4}))[
            "session_id"
        ],
        tokens=(
            (await post(f"/tracks/{tracks[0]}/share", {"visibility": "public"}))["token"],
            (await post(f"/collections/{collection}/share"))["token"],
        ),
        doomed_share_id=(await post(f"/tracks/{tracks[0]}/share"))["id"],
    )


def _config(caller: Caller, seeded: Seeded) -> schemathesis.Config:
    real = {"probability": REAL_ID_PROBABILITY}
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
            "headers": {"X-API-Key": caller.api_key},
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            "dictionaries": {
                "jobs": {"values": [seeded.job_id]},
                "tracks": {"values": [seeded.track_id]},
                "doomed_tracks": {"values": [seeded.doomed_track_id]},
                "collections": {"values": [seeded.collection_id]},
                "doomed_collections": {"values": [seeded.doomed_collection_id]},
                "sessions": {"values": [seeded.session_id]},
                "tokens": {"values": list(seeded.tokens)},
                "doomed_shares": {"values": [seeded.doomed_share_id]},
                "engines": {"values": ["studio"]},
            },
            "parameters": {
                # Fixed: a request on another organization's path stops at the 403.
                "path.organization_id": caller.org_id,
                "path.job_id": {"dictionary": "jobs", **real},
                "path.track_id": {"dictionary": "tracks", **real},
                "path.collection_id": {"dictionary": "collections", **real},
                "path.session_id": {"dictionary": "sessions", **real},
                "path.token": {"dictionary": "tokens", **real},
                "path.share_id": {"dictionary": "doomed_shares", **real},
                "body.track_id": {"dictionary": "tracks", **real},
                "body.cover_track_id": {"dictionary": "tracks", **real},
                "body.seed_track_id": {"dictionary": "tracks", **real},
                "body.ordered_track_ids[*]": {"dictionary": "tracks", **real},
                "body.engine": {"dictionary": "engines", **real},
            },
            "operations": [
                {
                    "include-name": f"DELETE {ORG}/tracks/{{track_id}}",
                    "parameters": {"path.track_id": {"dictionary": "doomed_tracks", **real}},
                },
                {
                    "include-name": f"DELETE {ORG}/collections/{{collection_id}}",
                    "parameters": {
                        "path.collection_id": {"dictionary": "doomed_collections", **real}
                    },
                },
            ],
        }
    )


@pytest.fixture
def contract_schema(
    settings: Settings, alice: Caller, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BaseSchema]:
    # The per-address limit of public resolves would answer most of them with 429.
    monkeypatch.setattr(shares, "RESOLVE_BURST", 1_000_000)
    # Its own app (and so its own database engine): schemathesis runs it on its event loop.
    app = create_app(settings)
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(alice, seeded))
    asgi.shutdown_lifespans()  # the app's lifespan closes its database


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's lazy loader reads ``Node._nodeid``, which pytest 9 no longer has.
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Case) -> None:
    case.call_and_validate(checks=CHECKS)


# --------------------------------------------------------------------------- found by fuzzing


async def test_a_body_that_is_not_utf8_is_a_422_not_an_undocumented_400(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    response = await client.post(
        alice.path("/collections"),
        content=b'{"name": "\xff\xfe"}',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == ["body"]


@pytest.mark.parametrize("path", ["/generations", "/tracks", "/collections"])
async def test_an_offset_past_the_databases_integers_is_a_422_not_a_500(
    client: httpx.AsyncClient, alice: Caller, path: str
) -> None:
    response = await client.get(alice.path(f"{path}?offset={2**63}"), headers=alice.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == ["offset"]


async def test_a_nul_character_is_a_422_where_postgresql_would_fail_with_a_500(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    created = await client.post(
        alice.path("/collections"), json={"name": "late\x00night"}, headers=alice.headers
    )
    assert_error(created, 422, "VALIDATION_ERROR")
    assert error_fields(created) == ["name"]
    read = await client.get(alice.path("/tracks/mtrack_%00"), headers=alice.headers)
    assert_error(read, 422, "VALIDATION_ERROR")
    assert error_fields(read) == ["track_id"]


@pytest.mark.parametrize("path", ["/generations", "/tracks", "/collections"])
async def test_a_repeated_query_parameter_is_a_422_not_its_last_value(
    client: httpx.AsyncClient, alice: Caller, path: str
) -> None:
    # /generations is served by its hot route, the others by FastAPI: both refuse.
    response = await client.get(alice.path(f"{path}?limit=200&limit=3"), headers=alice.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == ["limit"]


async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    # The GET of this path is a hot route and its POST a FastAPI one.
    response = await client.put(alice.path("/generations"), headers=alice.headers)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_divergence_must_be_a_number_not_a_numeric_string(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    body = {"goal": "focus", "target_minutes": 4, "divergence": "0.5"}
    response = await client.post(alice.path("/focus/sessions"), json=body, headers=alice.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == ["divergence"]
