"""track stems and midi

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:04:10.580879
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stems", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("midi_key", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.drop_column("midi_key")
        batch_op.drop_column("stems")
