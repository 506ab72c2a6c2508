"""Subscribers kept in the store (`paperdigest subscribers add`) and unsubscribes (one-click, or
`subscribers remove`), beside the config's [[subscribers]].

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("settings", sa.String(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("email"),
    )


def downgrade() -> None:
    op.drop_table("subscriber")
