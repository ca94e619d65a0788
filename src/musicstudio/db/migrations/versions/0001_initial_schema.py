"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 05:09:22.051242
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import musicstudio.db.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_users_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_users_org_id_email")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("display_prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_api_keys_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "generation_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("created_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("result_track_id", sa.String(length=40), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("available_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column(
            "lease_expires_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("started_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_generation_jobs_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_generation_jobs_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_jobs")),
    )
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_generation_jobs_org_id_user_id_created_at_id"),
            ["org_id", "user_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_generation_jobs_org_id_user_id_status_created_at_id"),
            ["org_id", "user_id", "status", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_generation_jobs_status_available_at_id"),
            ["status", "available_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_generation_jobs_status_lease_expires_at"),
            ["status", "lease_expires_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_generation_jobs_idempotency", ["org_id", "user_id", "idempotency_key"], unique=True
        )

    op.create_table(
        "tracks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("instrumental", sa.Boolean(), nullable=False),
        sa.Column("measured_duration_seconds", sa.Float(), nullable=False),
        sa.Column("mime_type", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("licence_class", sa.String(length=32), nullable=False),
        sa.Column("licence_version", sa.String(length=100), nullable=False),
        sa.Column("commercial_use", sa.Boolean(), nullable=False),
        sa.Column("requires_attribution", sa.Boolean(), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("created_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", musicstudio.db.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["generation_jobs.id"], name=op.f("fk_tracks_job_id_generation_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_tracks_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_tracks_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
    )
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracks_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_tracks_org_id_user_id_created_at_id"),
            ["org_id", "user_id", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracks_org_id_user_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_tracks_job_id"))

    op.drop_table("tracks")
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.drop_index("uq_generation_jobs_idempotency")
        batch_op.drop_index(batch_op.f("ix_generation_jobs_status_lease_expires_at"))
        batch_op.drop_index(batch_op.f("ix_generation_jobs_status_available_at_id"))
        batch_op.drop_index(batch_op.f("ix_generation_jobs_org_id_user_id_status_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_generation_jobs_org_id_user_id_created_at_id"))

    op.drop_table("generation_jobs")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_user_id"))

    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("organizations")
