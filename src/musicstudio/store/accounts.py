"""Organizations, users and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from musicstudio.db.tables import api_keys, organizations, users


@dataclass(frozen=True)
class Principal:
    """Who is calling: one user in one organization, through one key."""

    org_id: str
    user_id: str
    key_id: str


async def insert_organization(conn: AsyncConnection, org_id: str, name: str, now: datetime) -> None:
    await conn.execute(insert(organizations).values(id=org_id, name=name, created_at=now))


async def organization_exists(conn: AsyncConnection, org_id: str) -> bool:
    row = await conn.execute(select(organizations.c.id).where(organizations.c.id == org_id))
    return row.first() is not None


async def user_in_organization(conn: AsyncConnection, org_id: str, user_id: str) -> bool:
    row = await conn.execute(
        select(users.c.id).where(users.c.id == user_id, users.c.org_id == org_id)
    )
    return row.first() is not None


async def insert_user(
    conn: AsyncConnection, user_id: str, org_id: str, email: str, now: datetime
) -> None:
    await conn.execute(insert(users).values(id=user_id, org_id=org_id, email=email, created_at=now))


async def insert_api_key(
    conn: AsyncConnection,
    *,
    key_id: str,
    org_id: str,
    user_id: str,
    key_hash: str,
    display_prefix: str,
    name: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            org_id=org_id,
            user_id=user_id,
            key_hash=key_hash,
            display_prefix=display_prefix,
            name=name,
            created_at=now,
        )
    )


# The active key with bound ``key_hash`` (no row: unknown or revoked); built once, it is
# compiled once for the plain driver (``Database.fetch_all``).
ACTIVE_KEY = select(api_keys.c.id, api_keys.c.org_id, api_keys.c.user_id).where(
    api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
)


async def list_api_keys(
    conn: AsyncConnection, org_id: str, user_id: str | None = None
) -> list[dict[str, Any]]:
    """Keys of an organization (optionally one user), by prefix: never the key itself."""
    stmt = select(
        api_keys.c.id,
        api_keys.c.user_id,
        api_keys.c.display_prefix,
        api_keys.c.name,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
    ).where(api_keys.c.org_id == org_id)
    if user_id is not None:
        stmt = stmt.where(api_keys.c.user_id == user_id)
    result = await conn.execute(stmt.order_by(api_keys.c.created_at, api_keys.c.id))
    return [dict(row._mapping) for row in result]


async def revoke_api_key(conn: AsyncConnection, key_id: str, now: datetime) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


async def any_organization(conn: AsyncConnection) -> bool:
    result = await conn.execute(select(organizations.c.id).limit(1))
    return result.first() is not None
