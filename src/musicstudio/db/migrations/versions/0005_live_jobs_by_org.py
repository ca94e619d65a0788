"""live jobs by organization (the per-organization cap on queued + running jobs)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_LIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    op.create_index(
        "ix_generation_jobs_live_by_org",
        "generation_jobs",
        ["org_id"],
        unique=False,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )


def downgrade() -> None:
    op.drop_index("ix_generation_jobs_live_by_org", table_name="generation_jobs")
