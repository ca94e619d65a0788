"""Table definitions (SQLAlchemy Core), shared by SQLite and PostgreSQL and by Alembic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

# A job that still holds a place in the queue (literal SQL: a partial index is only used for
# queries that repeat its condition with the same literals).
LIVE_JOB_CONDITION = "status IN ('queued', 'running')"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns an aware UTC datetime (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares the stored text: keep one uniform naive-UTC form so it sorts.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_ID = 40

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("org_id", "email"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("display_prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Index(None, "user_id"),
)

generation_jobs = Table(
    "generation_jobs",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Integer, nullable=False, default=0),
    Column("engine", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("result_track_id", String(_ID), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("refusal_reason", Text, nullable=True),
    # What the engine is asked to do (prompt, duration, tags, …), as validated.
    Column("request", JSON, nullable=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("request_fingerprint", String(64), nullable=True),
    # Queue state: the job row is the queue entry.
    Column("available_at", UtcDateTime(), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    # A focus session's segment: the session and the segment's place in it.
    Column("focus_session_id", String(_ID), nullable=True),
    Column("segment_index", Integer, nullable=True),
    # Listing (newest first, optional status); ascending indexes are scanned backwards.
    Index(None, "org_id", "user_id", "created_at", "id"),
    Index(None, "org_id", "user_id", "status", "created_at", "id"),
    # Claiming (oldest available queued first) and rescuing (expired leases).
    Index(None, "status", "available_at", "id"),
    Index(None, "status", "lease_expires_at"),
    # Idempotency: one job per (org, user, key); NULL keys never collide.
    Index(
        "uq_generation_jobs_idempotency",
        "org_id",
        "user_id",
        "idempotency_key",
        unique=True,
    ),
    Index(None, "focus_session_id", "segment_index"),
    # The per-organization cap on live jobs counts only these rows (a partial index).
    Index(
        "ix_generation_jobs_live_by_org",
        "org_id",
        sqlite_where=text(LIVE_JOB_CONDITION),
        postgresql_where=text(LIVE_JOB_CONDITION),
    ),
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("job_id", String(_ID), ForeignKey("generation_jobs.id"), nullable=True),
    Column("title", String(200), nullable=False),
    Column("engine", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("instrumental", Boolean, nullable=False),
    Column("measured_duration_seconds", Float, nullable=False),
    Column("mime_type", String(64), nullable=False),
    Column("storage_key", String(500), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("licence_class", String(32), nullable=False),
    Column("licence_version", String(100), nullable=False),
    Column("commercial_use", Boolean, nullable=False),
    Column("requires_attribution", Boolean, nullable=False),
    Column("recipe", JSON, nullable=False),
    # {stem name: {"storage_key", "mime_type", "size_bytes"}} when the engine made stems.
    Column("stems", JSON, nullable=True),
    Column("midi_key", String(500), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime(), nullable=True),
    Index(None, "org_id", "user_id", "created_at", "id"),
    Index(None, "job_id"),
)

# A user's library: the tracks they made (``generated``) or saved from a share (``shared``).
library_entries = Table(
    "library_entries",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("track_id", String(_ID), ForeignKey("tracks.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("share_link_id", String(_ID), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # Newest save first; one entry per track and user.
    Index(None, "org_id", "user_id", "created_at", "id"),
    Index("uq_library_entries_user_track", "org_id", "user_id", "track_id", unique=True),
    Index(None, "track_id"),
)

collections = Table(
    "collections",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("name", String(512), nullable=False),
    Column("description", Text, nullable=True),
    Column("cover_track_id", String(_ID), nullable=True),
    Column("cover_image_url", String(1024), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime(), nullable=True),
    Index(None, "org_id", "user_id", "created_at", "id"),
)

collection_tracks = Table(
    "collection_tracks",
    metadata,
    Column("collection_id", String(_ID), ForeignKey("collections.id"), primary_key=True),
    Column("track_id", String(_ID), ForeignKey("tracks.id"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("added_at", UtcDateTime(), nullable=False),
    Index(None, "collection_id", "position"),
    Index(None, "track_id"),
)

# A share link stores only its token's keyed hash; the raw token is shown once.
share_links = Table(
    "share_links",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("target_type", String(16), nullable=False),
    Column("track_id", String(_ID), ForeignKey("tracks.id"), nullable=True),
    Column("collection_id", String(_ID), ForeignKey("collections.id"), nullable=True),
    Column("visibility", String(16), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Index(None, "org_id", "user_id", "created_at", "id"),
)

# A focus session: segments of about two minutes, rendered as jobs (``generation_jobs`` rows
# with ``focus_session_id``) through the same queue and workers.
focus_sessions = Table(
    "focus_sessions",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("org_id", String(_ID), ForeignKey("organizations.id"), nullable=False),
    Column("user_id", String(_ID), ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("goal", String(32), nullable=False),
    Column("custom_prompt", Text, nullable=True),
    Column("intensity", String(16), nullable=False),
    Column("divergence", Float, nullable=False),
    Column("engine", String(64), nullable=False),
    Column("target_minutes", Integer, nullable=False),
    Column("total_segments", Integer, nullable=False),
    Column("segment_seconds", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("target_lufs", Float, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Index(None, "org_id", "user_id", "created_at", "id"),
)
