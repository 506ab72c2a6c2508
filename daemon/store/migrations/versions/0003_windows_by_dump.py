"""Digest windows in commit order: each outbox row records the dump ids its window covers.

Ingests are serialised, so dump ids grow in the order dumps commit; a window bounded by them
never skips a paper whose ingest committed late or on a host whose clock is behind. Rows made
before this revision get the ids of the dumps ingested by their window's times.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("window_start_dump", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("window_end_dump", sa.Integer(), nullable=True))
    for column, moment in (("window_start_dump", "window_start"), ("window_end_dump", "window_end")):
        op.execute(
            f"UPDATE outbox SET {column} = (SELECT coalesce(max(dump.id), 0) FROM dump"
            f" WHERE dump.ingested_at <= outbox.{moment})"
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("window_end_dump")
        batch.drop_column("window_start_dump")
