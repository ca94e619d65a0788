"""OWASP API1 (object-level authorization) over every operation of the OpenAPI document.

Alice owns one live object of every kind. Bob (her organization) and Carol (another one) get
exactly what a missing id gets, byte for byte but for the request id and timestamp; Carol's key
on Alice's organization path gets the same 403 for an existing and a missing id; no list or
read shows them Alice's rows. The operations come from ``app.openapi()``, so a new route is
covered as it appears, and one that names an object this module cannot make fails the suite.
Runs on SQLite and on PostgreSQL, like the store suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from musicstudio import ids
from musicstudio.api.app import create_app
from musicstudio.db.tables import collection_tracks, collections, metadata
from musicstudio.services.context import ServiceContext
from musicstudio.services.shares import new_token
from musicstudio.worker.runner import Worker
from tests.conftest import Caller
from tests.helpers import assert_error, job_body

# The store suite's fixtures: every test here runs on SQLite and on a real PostgreSQL.
from tests.store.conftest import postgres_url, settings  # noqa: F401

ORG = "organization_id"
TOKEN = "token"  # a share link's secret: a capability anyone holding it may use, not an object
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

# The object kind each id parameter names, wherever it is sent: path, query or body.
ID_KINDS = {
    "job_id": "job",
    "track_id": "track",
    "seed_track_id": "track",
    "cover_track_id": "track",
    "ordered_track_ids": "track",
    "collection_id": "collection",
    "session_id": "session",
    "share_id": "share",
}
PREFIXES = {
    "job": ids.JOB,
    "track": ids.TRACK,
    "collection": ids.COLLECTION,
    "session": ids.FOCUS_SESSION,
    "share": ids.SHARE_LINK,
}

_V1 = "/v1/music/{organization_id}"
_COLLECTION = _V1 + "/collections/{collection_id}"
# A valid body for every operation that takes one, from the objects of the caller sending it.
BODIES: dict[tuple[str, str], Callable[[Mapping[str, str]], dict[str, Any]]] = {
    ("POST", _V1 + "/generations"): lambda o: job_body(duration_seconds=1),
    ("POST", _V1 + "/collections"): lambda o: {"name": "Evenings"},
    ("PATCH", _COLLECTION): lambda o: {"name": "Renamed", "description": "new"},
    ("POST", _COLLECTION + "/tracks"): lambda o: {"track_id": o["track"]},
    ("PATCH", _COLLECTION + "/order"): lambda o: {"ordered_track_ids": [o["track"]]},
    ("POST", _COLLECTION + "/share"): lambda o: {"visibility": "public"},
    ("POST", _V1 + "/tracks/{track_id}/share"): lambda o: {"expires_in_days": 7},
    ("POST", _V1 + "/focus/sessions"): lambda o: {"goal": "focus", "target_minutes": 1},
}
# GET operations without an object id: the key of their rows, or None for the deployment's
# own data (nobody's rows).
LISTS: dict[str, str | None] = {
    "/healthz": None,
    "/readyz": None,
    _V1 + "/engines": None,
    _V1 + "/generations": "jobs",
    _V1 + "/tracks": "items",
    _V1 + "/collections": "items",
}
NOT_FOUND = (404, "RESOURCE_NOT_FOUND")
DENIED = (403, "ORGANIZATION_ACCESS_DENIED")
# Differ on every response by design; everything else must match.
_PER_REQUEST_HEADERS = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "date"}
_DOCUMENT: dict[str, Any] = {}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_fields: tuple[str, ...] | None  # None: the operation takes no body
    authenticated: bool

    @property
    def object_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.path_params if p not in (ORG, TOKEN))

    @property
    def sent_ids(self) -> list[tuple[str, str]]:
        """(where, name) of every id sent beside the path's own object, to probe one by one."""
        found = [("query", q) for q in self.query_params if q in ID_KINDS]
        found += [("body", f) for f in self.body_fields or () if f in ID_KINDS]
        if len(self.object_params) > 1:  # an inner object under the caller's own outer one
            found += [("path", p) for p in self.object_params]
        return found

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class World:
    """One live object of every kind (kind → id), owned by ``caller``."""

    caller: Caller
    objects: dict[str, str]
    token: str  # the raw token of ``objects["share"]``


def _names_object(name: str) -> bool:
    return name != ORG and name.endswith(("_id", "_ids"))


def _properties(schema: Mapping[str, Any], components: Mapping[str, Any]) -> set[str]:
    if "$ref" in schema:
        return _properties(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    names = set(schema.get("properties", {}))
    for variant in (*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())):
        names |= _properties(variant, components)
    return names


def _document(ctx: ServiceContext) -> dict[str, Any]:
    """The OpenAPI document, built once: it is the same for every app and costs a fair share
    of a test to build."""
    if not _DOCUMENT:
        _DOCUMENT.update(create_app(ctx=ctx).openapi())
    return _DOCUMENT


def _operations(ctx: ServiceContext) -> list[Operation]:
    """Every operation of the OpenAPI document; fails for one this module cannot exercise."""
    document = _document(ctx)
    components = document.get("components", {}).get("schemas", {})
    operations, problems = [], []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method not in HTTP_METHODS:
                continue
            params = [*item.get("parameters", ()), *spec.get("parameters", ())]
            content = spec.get("requestBody", {}).get("content", {}).get("application/json")
            op = Operation(
                method.upper(),
                path,
                tuple(p["name"] for p in params if p["in"] == "path"),
                tuple(p["name"] for p in params if p["in"] == "query"),
                None
                if content is None
                else tuple(sorted(_properties(content["schema"], components))),
                bool(spec.get("security")),
            )
            operations.append(op)
            for name in op.path_params:
                if name not in (ORG, TOKEN, *ID_KINDS):
                    problems.append(f"new route {op} takes {{{name}}}: add a fixture object for it")
            for name in (*op.query_params, *(op.body_fields or ())):
                if _names_object(name) and name not in ID_KINDS:
                    problems.append(f"{op} sends {name!r}: map it to an object kind in ID_KINDS")
            if op.body_fields is not None and (op.method, op.path) not in BODIES:
                problems.append(f"{op} takes a body: add a valid one to BODIES")
            if op.method == "GET" and set(op.path_params) <= {ORG} and path not in LISTS:
                problems.append(f"new list {op}: add it to LISTS (its rows' key, or None)")
    assert not problems, "\n".join(problems)
    return operations


def _url(op: Operation, org_id: str, objects: Mapping[str, str], **override: str) -> str:
    values = {p: objects[ID_KINDS[p]] for p in op.object_params}
    return op.path.format(**{ORG: org_id, **values, **override})


def _body(op: Operation, objects: Mapping[str, str]) -> dict[str, Any] | None:
    return None if op.body_fields is None else BODIES[(op.method, op.path)](objects)


def _missing() -> dict[str, str]:
    """Well-formed ids that name nothing."""
    return {kind: ids.new_id(prefix) for kind, prefix in PREFIXES.items()}


def _comparable(response: httpx.Response, *sent: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and bytes, but for the request id, the error's timestamp, rate-limit
    counters and the ids the request itself sent (an echo of the input tells nothing)."""
    text = response.text.replace(response.headers["x-request-id"], "<request-id>")
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        text = text.replace(body["error"]["timestamp"], "<timestamp>")
    for index, value in enumerate(sent):
        text = text.replace(value, f"<sent-{index}>")
    headers = {k: v for k, v in response.headers.items() if k not in _PER_REQUEST_HEADERS}
    return response.status_code, headers, text


def _differences(
    what: str,
    foreign: httpx.Response,
    foreign_ids: list[str],
    absent: httpx.Response,
    absent_ids: list[str],
    expected: tuple[int, str] | None,
) -> list[str]:
    """Why ``foreign`` (a real object of someone else's) is told apart from ``absent``."""
    problems = []
    if expected is not None:
        try:
            assert_error(foreign, *expected)
        except AssertionError as exc:
            problems.append(f"{what}: expected {expected}, got {foreign.status_code}: {exc}")
    if _comparable(foreign, *foreign_ids) != _comparable(absent, *absent_ids):
        problems.append(
            f"{what}: differs from a missing id:\n  theirs:  {_comparable(foreign, *foreign_ids)}"
            f"\n  missing: {_comparable(absent, *absent_ids)}"
        )
    return problems


async def _sent(
    client: httpx.AsyncClient, caller: Caller, method: str, rest: str, body: Any
) -> dict[str, Any]:
    response = await client.request(method, caller.path(rest), json=body, headers=caller.headers)
    assert response.is_success, (method, rest, response.text)
    return dict(response.json())


async def _worlds(client: httpx.AsyncClient, ctx: ServiceContext, *callers: Caller) -> list[World]:
    """For each caller: a succeeded job and its track, a collection holding the track, a focus
    session and a share link of the track."""
    create = BODIES[("POST", _V1 + "/generations")]({})
    job_ids = [(await _sent(client, c, "POST", "/generations", create))["id"] for c in callers]
    # Every render before any session: the worker would claim their segments next.
    for _ in callers:
        assert await Worker(ctx).run_once()
    worlds = []
    for caller, job_id in zip(callers, job_ids, strict=True):
        job = await _sent(client, caller, "GET", f"/generations/{job_id}", None)
        assert job["status"] == "succeeded", job
        track = job["result_track_id"]
        named = BODIES[("POST", _V1 + "/collections")]({}) | {"cover_track_id": track}
        collection = (await _sent(client, caller, "POST", "/collections", named))["id"]
        await _sent(
            client, caller, "POST", f"/collections/{collection}/tracks", {"track_id": track}
        )
        start = BODIES[("POST", _V1 + "/focus/sessions")]({})
        session = (await _sent(client, caller, "POST", "/focus/sessions", start))["session_id"]
        link = await _sent(client, caller, "POST", f"/tracks/{track}/share", None)
        objects = {
            "job": job_id,
            "track": track,
            "collection": collection,
            "session": session,
            "share": link["id"],
        }
        worlds.append(World(caller, objects, link["token"]))
    return worlds


async def _rows_of(ctx: ServiceContext, caller: Caller) -> dict[str, list[dict[str, Any]]]:
    """Every row the caller owns, and their collections' entries."""
    snapshot = {}
    async with ctx.db.read() as conn:
        for table in metadata.sorted_tables:
            if "user_id" in table.c:
                query = select(table).where(table.c.user_id == caller.user_id)
                rows = await conn.execute(query.order_by(*table.primary_key.columns))
                snapshot[table.name] = [dict(row._mapping) for row in rows]
        owned = select(collections.c.id).where(collections.c.user_id == caller.user_id)
        entries = select(collection_tracks).where(collection_tracks.c.collection_id.in_(owned))
        rows = await conn.execute(entries.order_by(*collection_tracks.primary_key.columns))
        snapshot[collection_tracks.name] = [dict(row._mapping) for row in rows]
    return snapshot


def _owner_order(op: Operation) -> tuple[bool, bool, int, str]:
    """Reads first, deletes last, inner objects before the ones holding them."""
    return op.method != "GET", op.method == "DELETE", -len(op.object_params), op.path


async def test_other_users_and_organizations_get_exactly_what_a_missing_id_gets(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    """Bob and Carol can read none of Alice's objects, so even a track delete is a 404 (the
    contract's 403 is for a reader who saved the track and did not create it)."""
    operations = [op for op in _operations(ctx) if op.object_params]
    [victim] = await _worlds(client, ctx, alice)
    missing = _missing()
    before = await _rows_of(ctx, alice)

    problems = []
    for op in operations:
        body = _body(op, victim.objects)
        theirs = [victim.objects[ID_KINDS[p]] for p in op.object_params]
        absent = [missing[ID_KINDS[p]] for p in op.object_params]
        for who, caller, org_id, expected in (
            ("another user of the organization", bob, bob.org_id, NOT_FOUND),
            ("a user of another organization", carol, carol.org_id, NOT_FOUND),
            ("another organization on the owner's path", carol, alice.org_id, DENIED),
        ):
            foreign = await client.request(
                op.method, _url(op, org_id, victim.objects), json=body, headers=caller.headers
            )
            made_up = await client.request(
                op.method, _url(op, org_id, missing), json=body, headers=caller.headers
            )
            problems += _differences(f"{op} by {who}", foreign, theirs, made_up, absent, expected)
    assert not problems, "\n".join(problems)
    assert await _rows_of(ctx, alice) == before, "a refused call changed the owner's objects"

    # The owner gets a success from the same calls: the ids were real.
    for op in sorted(operations, key=_owner_order):
        url = _url(op, alice.org_id, victim.objects)
        mine = await client.request(
            op.method, url, json=_body(op, victim.objects), headers=alice.headers
        )
        assert mine.is_success, (str(op), mine.status_code, mine.text)


async def test_ids_sent_in_queries_bodies_and_inner_paths_answer_like_missing_ones(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    """Bob and Carol, on their own objects, name one of Alice's in a query, a body or an inner
    path segment (a seed or cover track, a track to add, a collection filter)."""
    operations = [op for op in _operations(ctx) if op.sent_ids]
    victim, *others = await _worlds(client, ctx, alice, bob, carol)
    missing = _missing()
    before = await _rows_of(ctx, alice)

    async def send(op: Operation, world: World, where: str, name: str, value: str) -> Any:
        url = _url(
            op, world.caller.org_id, world.objects, **({name: value} if where == "path" else {})
        )
        if where == "query":
            url += "?" + urlencode({name: value})
        body = _body(op, world.objects)
        if where == "body":
            body = {**(body or {}), name: [value] if name.endswith("_ids") else value}
        return await client.request(op.method, url, json=body, headers=world.caller.headers)

    problems = []
    for op in operations:
        for where, name in op.sent_ids:
            kind = ID_KINDS[name]
            for world in others:  # on their own objects, naming one of Alice's
                theirs = await send(op, world, where, name, victim.objects[kind])
                absent = await send(op, world, where, name, missing[kind])
                what = f"{op} with Alice's {kind} as {where} {name} by {world.caller.user_id}"
                problems += _differences(
                    what, theirs, [victim.objects[kind]], absent, [missing[kind]], None
                )
    assert not problems, "\n".join(problems)
    assert await _rows_of(ctx, alice) == before, "a probe changed the owner's objects"

    for op in sorted(operations, key=_owner_order):
        for where, name in op.sent_ids:
            mine = await send(op, victim, where, name, victim.objects[ID_KINDS[name]])
            assert mine.is_success, (str(op), where, name, mine.status_code, mine.text)


async def test_no_list_or_read_shows_another_users_or_organizations_rows(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    reads = [op for op in _operations(ctx) if op.method == "GET" and TOKEN not in op.path_params]
    victim, *others = await _worlds(client, ctx, alice, bob, carol)
    alices_ids = {
        row["id"] for rows in (await _rows_of(ctx, alice)).values() for row in rows if "id" in row
    }
    assert len(alices_ids) > len(victim.objects), "her library entry, key, segment jobs too"
    assert all(object_id in alices_ids for object_id in victim.objects.values())

    for op in reads:
        rows_key = LISTS.get(op.path)
        for world in (victim, *others):
            url = _url(op, world.caller.org_id, world.objects)
            response = await client.get(url, headers=world.caller.headers)
            assert response.status_code == 200, (str(op), response.text)
            shown = {object_id for object_id in alices_ids if object_id in response.text}
            if world is victim:
                # The owner sees her rows here, so the check below could catch a leak.
                assert rows_key is None or shown, (str(op), response.text)
            else:
                assert not shown, f"{op} shows {world.caller.user_id} Alice's {sorted(shown)}"
            if rows_key is not None:
                assert response.json()[rows_key], f"{op} lists none of {world.caller.user_id}'s"


async def test_revoked_share_tokens_and_object_ids_answer_like_made_up_tokens(
    client: httpx.AsyncClient, ctx: ServiceContext, alice: Caller, bob: Caller, carol: Caller
) -> None:
    """A share token is a capability (anyone holding a live one may use it); what must not
    work is a revoked token, or an object's id passed off as a token."""
    operations = [op for op in _operations(ctx) if TOKEN in op.path_params]
    assert operations, "the public share routes take a token"
    [victim] = await _worlds(client, ctx, alice)
    track = victim.objects["track"]
    revoked = await _sent(client, alice, "POST", f"/tracks/{track}/share", None)
    await _sent(client, alice, "DELETE", f"/share/{revoked['id']}", None)
    fakes = {
        "a revoked token": revoked["token"],
        **{f"a {k} id": v for k, v in victim.objects.items()},
    }

    problems = []
    for op in operations:
        for who, headers in (("anyone", {}), ("Bob", bob.headers), ("Carol", carol.headers)):
            anonymous = op.authenticated and not headers
            expected = (401, "AUTHENTICATION_REQUIRED") if anonymous else NOT_FOUND
            made_up = new_token()
            absent = await client.request(
                op.method, _url(op, alice.org_id, {}, token=made_up), headers=headers
            )
            for what, fake in fakes.items():
                foreign = await client.request(
                    op.method, _url(op, alice.org_id, {}, token=fake), headers=headers
                )
                problems += _differences(
                    f"{op} with {what} by {who}", foreign, [fake], absent, [made_up], expected
                )
    assert not problems, "\n".join(problems)

    for op in operations:
        live = await client.request(
            op.method, _url(op, alice.org_id, {}, token=victim.token), headers=alice.headers
        )
        assert live.is_success, (str(op), live.status_code, live.text)
