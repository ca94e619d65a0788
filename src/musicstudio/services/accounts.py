"""Organizations, users and API keys: bootstrap, create, authenticate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio import ids
from musicstudio.clock import utcnow
from musicstudio.errors import InvalidApiKey, NotFound
from musicstudio.security import api_key_display_prefix, generate_api_key, looks_like_api_key
from musicstudio.services.context import ServiceContext
from musicstudio.store import accounts as store
from musicstudio.store.accounts import Principal


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the only moment the secret exists outside the caller's hands."""

    organization_id: str
    user_id: str
    api_key: str


async def bootstrap(
    ctx: ServiceContext, org_name: str = "Default organization", email: str = "admin@localhost"
) -> IssuedKey:
    """A new organization with one user and one key."""
    org_id = ids.new_id(ids.ORGANIZATION)
    async with ctx.db.write() as conn:
        await store.insert_organization(conn, org_id, org_name, utcnow())
    return await create_user(ctx, org_id, email)


async def create_user(ctx: ServiceContext, org_id: str, email: str) -> IssuedKey:
    """A new user of an existing organization, with a first key."""
    user_id = ids.new_id(ids.USER)
    async with ctx.db.write() as conn:
        if not await store.organization_exists(conn, org_id):
            raise NotFound(f"Organization {org_id} does not exist.")
        await store.insert_user(conn, user_id, org_id, email, utcnow())
        return await _issue_key(ctx, conn, org_id, user_id, "default")


async def create_key(ctx: ServiceContext, org_id: str, user_id: str, name: str) -> IssuedKey:
    """Another key for an existing user (rotation: issue the new one, then revoke the old)."""
    async with ctx.db.write() as conn:
        if not await store.user_in_organization(conn, org_id, user_id):
            raise NotFound(f"No user {user_id} in organization {org_id}.")
        return await _issue_key(ctx, conn, org_id, user_id, name)


async def _issue_key(
    ctx: ServiceContext, conn: AsyncConnection, org_id: str, user_id: str, name: str
) -> IssuedKey:
    api_key = generate_api_key()
    await store.insert_api_key(
        conn,
        key_id=ids.new_id(ids.API_KEY),
        org_id=org_id,
        user_id=user_id,
        key_hash=ctx.hasher.hash(api_key),
        display_prefix=api_key_display_prefix(api_key),
        name=name,
        now=utcnow(),
    )
    return IssuedKey(organization_id=org_id, user_id=user_id, api_key=api_key)


async def list_keys(ctx: ServiceContext, org_id: str) -> list[dict[str, Any]]:
    """An organization's keys by display prefix (the keys themselves are never stored)."""
    async with ctx.db.read() as conn:
        return await store.list_api_keys(conn, org_id)


async def revoke_key(ctx: ServiceContext, key_id: str) -> None:
    """Revoke a key; the next request with it fails."""
    async with ctx.db.write() as conn:
        if not await store.revoke_api_key(conn, key_id, utcnow()):
            raise NotFound(f"No active API key {key_id}.")


async def authenticate(ctx: ServiceContext, api_key: str) -> Principal:
    """The principal of an active key; unknown, malformed and revoked keys look the same."""
    if not looks_like_api_key(api_key):
        raise InvalidApiKey("The API key is not valid.")
    rows = await ctx.db.fetch_all(  # a unique-index lookup
        store.ACTIVE_KEY, {"key_hash": ctx.hasher.hash(api_key)}, bounded=True
    )
    if not rows:
        raise InvalidApiKey("The API key is not valid.")
    row = rows[0]
    return Principal(org_id=row["org_id"], user_id=row["user_id"], key_id=row["id"])


async def bootstrap_if_empty(ctx: ServiceContext) -> IssuedKey | None:
    """On a fresh database: the default organization, user and key; else None."""
    async with ctx.db.read() as conn:
        if await store.any_organization(conn):
            return None
    return await bootstrap(ctx)
