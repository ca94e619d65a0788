"""Secrets: API keys and share tokens never rest in the database (only keyed hashes do), the
lookup is by keyed hash so closeness of a guess tells nothing, secrets compared directly go
through ``hmac.compare_digest``, and a revoked key fails on the very next request.

Runs on SQLite (the raw database, -wal and -shm files) and on PostgreSQL (``pg_dump``).
No timing is measured: the properties that make timing useless are asserted instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from musicstudio.db.database import driver_dsn
from musicstudio.errors import InvalidApiKey, NotFound
from musicstudio.security import (
    API_KEY_PREFIX,
    DISPLAY_PREFIX_LENGTH,
    KeyHasher,
    UrlSigner,
    api_key_display_prefix,
    generate_api_key,
)
from musicstudio.services import accounts
from musicstudio.services.context import ServiceContext
from musicstudio.services.shares import TOKEN_PREFIX, new_token
from tests.api.test_shares import _collection, _token
from tests.api.test_tracks import T0, _track
from tests.conftest import Caller
from tests.helpers import assert_error, local_path
from tests.processes import cli_env, run_cli

# The store suite's fixtures: every test here runs on SQLite and on a real PostgreSQL.
from tests.store.conftest import postgres_url, settings  # noqa: F401

PG_DUMP = "/usr/bin/pg_dump"
# The only piece of a key kept anywhere is its display prefix (8 characters after msk_), so
# no run of one more character of a secret's body may appear.
WINDOW = DISPLAY_PREFIX_LENGTH + 1


async def _another_key(ctx: ServiceContext, caller: Caller) -> str:
    """A second key of the same user."""
    issued = await accounts.create_key(ctx, caller.org_id, caller.user_id, "second")
    return issued.api_key


async def _key_id(ctx: ServiceContext, caller: Caller, key: str) -> str:
    listed = await accounts.list_keys(ctx, caller.org_id)
    [row] = [k for k in listed if k["display_prefix"] == api_key_display_prefix(key)]
    return str(row["id"])


def _raw_database(database_url: str) -> bytes:
    """Every byte the database holds: SQLite's files (main, -wal, -shm) or a pg_dump."""
    if database_url.startswith("postgresql"):
        dump = subprocess.run(
            [PG_DUMP, "--no-owner", "--dbname", driver_dsn(database_url)],
            capture_output=True,
            check=True,
            timeout=60,
        )
        assert b"COPY public.api_keys" in dump.stdout, "the dump holds the data"
        return dump.stdout
    database = Path(database_url.split("///", 1)[1])
    files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    assert files[1].exists(), "WAL mode: recent writes are in the -wal file, read it too"
    return b"".join(path.read_bytes() for path in files if path.exists())


def _leaks(raw: bytes, secret: str, prefix: str) -> list[str]:
    """The secret, or any WINDOW-long run of its body past the display prefix, where it
    appears in ``raw``. (Runs that overlap the stored display prefix could match it followed
    by whatever byte the file stores next: the key's ``name`` column, say.)"""
    hidden = secret.removeprefix(prefix)[DISPLAY_PREFIX_LENGTH:]
    runs = [hidden[i : i + WINDOW] for i in range(len(hidden) - WINDOW + 1)]
    return [text for text in (secret, *runs) if text.encode() in raw]


async def test_neither_keys_nor_share_tokens_rest_in_the_database(
    ctx: ServiceContext,
    client: httpx.AsyncClient,
    alice: Caller,
    bob: Caller,
    carol: Caller,
) -> None:
    extra = [await accounts.create_user(ctx, alice.org_id, f"u{i}@example.com") for i in (1, 2)]
    keys = [alice.api_key, bob.api_key, carol.api_key, *(issued.api_key for issued in extra)]
    keys.append(await _another_key(ctx, alice))
    await accounts.revoke_key(ctx, await _key_id(ctx, bob, bob.api_key))  # revoked rows too

    tokens = []
    for owner in (alice, alice, carol):
        track_id = await _track(ctx, owner, saved_at=T0)
        tokens.append(await _token(client, owner, f"/tracks/{track_id}"))
    collection_id = await _collection(ctx, alice, [])
    tokens.append(await _token(client, alice, f"/collections/{collection_id}"))
    for token in tokens:  # each one used once, as a visitor would
        assert (await client.get(f"/v1/music/shared/{token}")).status_code == 200
    for caller in (alice, carol):  # keys used, through both headers
        bearer = {"Authorization": f"Bearer {caller.api_key}"}
        for headers in (caller.headers, bearer):
            assert (await client.get(caller.path("/tracks"), headers=headers)).status_code == 200

    raw = _raw_database(ctx.settings.database_url)

    for key in keys:
        assert _leaks(raw, key, API_KEY_PREFIX) == [], key
        # The control: what is stored for the key is in the bytes read.
        assert ctx.hasher.hash(key).encode() in raw
        assert api_key_display_prefix(key).encode() in raw
    for token in tokens:
        assert _leaks(raw, token, TOKEN_PREFIX) == [], token
        assert ctx.hasher.hash(token).encode() in raw


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))


def _bits_apart(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _near_misses(secret: str, prefix: str) -> list[str]:
    """Guesses as close as guesses get: one character changed, at every position of the body
    (so each shares a prefix of every length with the secret), and every last character."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    start = len(prefix)
    guesses = {
        secret[:i] + ("a" if secret[i] != "a" else "b") + secret[i + 1 :]
        for i in range(start, len(secret))
    }
    guesses |= {secret[:-1] + c for c in alphabet if c != secret[-1]}
    return sorted(guesses)


@pytest.mark.parametrize(
    ("make", "prefix"),
    [(generate_api_key, API_KEY_PREFIX), (new_token, TOKEN_PREFIX)],
    ids=["api key", "share token"],
)
def test_a_near_miss_guess_hashes_to_an_unrelated_value(
    make: Callable[[], str], prefix: str
) -> None:
    """Keys and tokens are looked up by their keyed hash, so how far a database compare gets
    depends on the hash alone; a guess that shares all but one character with a secret must
    share no more of its hash than an unrelated value would."""
    hasher = KeyHasher(b"test-secret-key")
    secret = make()
    real = hasher.hash(secret)
    for guess in _near_misses(secret, prefix):
        hashed = hasher.hash(guess)
        # Two random SHA-256 digests: P(7+ equal leading hex digits) = 16**-7 per pair, and
        # their bit distance is 128 ± 8; both bounds fail by chance < 1e-6 over ~100 guesses.
        assert _common_prefix(hashed, real) <= 6, guess
        assert 80 <= _bits_apart(hashed, real) <= 176, guess
    # Keyed: without the server secret nobody can compute the value a guess is looked up by.
    assert KeyHasher(b"another-secret").hash(secret) != real
    assert hashlib.sha256(secret.encode()).hexdigest() != real


async def test_authentication_looks_up_the_keyed_hash_never_the_key(
    ctx: ServiceContext, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    fetch_all = ctx.db.fetch_all

    async def recording(statement: Any, params: Any = None, **kwargs: Any) -> list[Any]:
        sent.append(dict(params or {}))
        return await fetch_all(statement, params, **kwargs)

    monkeypatch.setattr(ctx.db, "fetch_all", recording)
    principal = await accounts.authenticate(ctx, alice.api_key)
    assert (principal.org_id, principal.user_id) == (alice.org_id, alice.user_id)
    near_miss = _near_misses(alice.api_key, API_KEY_PREFIX)[-1]
    with pytest.raises(InvalidApiKey):
        await accounts.authenticate(ctx, near_miss)
    assert sent == [
        {"key_hash": ctx.hasher.hash(alice.api_key)},
        {"key_hash": ctx.hasher.hash(near_miss)},
    ]


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every ``hmac.compare_digest`` call from now on (the real function still answers)."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


def test_key_hash_and_url_signature_checks_use_compare_digest(
    compared: list[tuple[Any, Any]],
) -> None:
    hasher = KeyHasher(b"test-secret-key")
    key = generate_api_key()
    stored = hasher.hash(key)
    assert hasher.verify(key, stored)
    assert not hasher.verify(key[:-1] + ("a" if key[-1] != "a" else "b"), stored)
    assert [b for _, b in compared] == [stored, stored]

    compared.clear()
    signer = UrlSigner(b"test-secret-key")
    expires = int(time.time()) + 60
    signed = signer.sign("/media/a.mp3", expires)
    forged = signed["sig"][:-1] + ("A" if signed["sig"][-1] != "A" else "B")
    assert signer.verify("/media/a.mp3", signed["expires"], signed["kid"], signed["sig"], 0)
    assert not signer.verify("/media/a.mp3", signed["expires"], signed["kid"], forged, 0)
    assert [b for _, b in compared] == [signed["sig"], forged]


async def test_signed_media_urls_are_checked_with_compare_digest(
    ctx: ServiceContext, client: httpx.AsyncClient, tmp_path: Path, compared: list[Any]
) -> None:
    source = tmp_path / "a.mp3"
    source.write_bytes(b"ID3-audio")
    ctx.storage.put_file("tracks/o/a.mp3", source, "audio/mpeg")
    url = local_path(ctx.storage.playback_url("tracks/o/a.mp3", int(time.time()) + 60, "http://t"))
    signature = url.rsplit("sig=", 1)[1]
    assert (await client.get(url)).content == b"ID3-audio"
    forged = url[:-1] + ("A" if url[-1] != "A" else "B")
    assert (await client.get(forged)).status_code in (403, 404)
    assert [b for _, b in compared] == [signature, forged.rsplit("sig=", 1)[1]]


async def _status(client: httpx.AsyncClient, caller: Caller, key: str) -> list[int]:
    """One request to a hot route and one to a FastAPI route, by both headers."""
    statuses = []
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        for path in ("/generations", "/tracks"):
            response = await client.get(caller.path(path), headers=headers)
            if response.status_code == 401:
                assert_error(response, 401, "INVALID_API_KEY")
            statuses.append(response.status_code)
    return statuses


async def test_a_revoked_key_fails_on_the_next_request_and_the_users_other_key_works(
    ctx: ServiceContext, client: httpx.AsyncClient, alice: Caller
) -> None:
    other = await _another_key(ctx, alice)
    assert await _status(client, alice, alice.api_key) == [200] * 4
    assert await _status(client, alice, other) == [200] * 4

    await accounts.revoke_key(ctx, await _key_id(ctx, alice, alice.api_key))

    assert await _status(client, alice, alice.api_key) == [401] * 4
    assert await _status(client, alice, other) == [200] * 4
    with pytest.raises(NotFound):  # revoking twice says so
        await accounts.revoke_key(ctx, await _key_id(ctx, alice, alice.api_key))


async def test_a_key_revoked_by_the_cli_fails_on_the_next_request(
    ctx: ServiceContext, client: httpx.AsyncClient, alice: Caller
) -> None:
    # Other processes, as an operator runs them, against the same database and secret:
    # rotate by issuing a new key, then revoking the old one.
    env = cli_env(
        ctx.settings.data_dir,
        MUSICSTUDIO_DATABASE_URL=ctx.settings.database_url,
        MUSICSTUDIO_SECRET_KEY=ctx.settings.secret_key.decode(),
    )
    create = ["admin", "create-key", "--org", alice.org_id, "--user", alice.user_id, "--json"]
    other = json.loads(run_cli(create, env))["api_key"]
    assert await _status(client, alice, alice.api_key) == [200] * 4
    assert await _status(client, alice, other) == [200] * 4
    key_id = await _key_id(ctx, alice, alice.api_key)
    run_cli(["admin", "revoke-key", key_id], env)

    assert await _status(client, alice, alice.api_key) == [401] * 4
    assert await _status(client, alice, other) == [200] * 4
