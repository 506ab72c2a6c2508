"""64-bit ids: the ids of dumps, papers, outbox rows and rejections, and the columns that refer
to them (a digest's window by dump ids among them), become BIGINT on PostgreSQL, their
sequences too. A no-op on SQLite, whose INTEGER PRIMARY KEY is a 64-bit rowid already.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# table -> its id column (with a sequence) and the columns holding ids of other tables
SERIAL = ("dump", "paper", "outbox", "rejection")
REFERENCES = {
    "paper": ("first_dump_id",),
    "outbox": ("window_start_dump", "window_end_dump"),
    "sighting": ("dump_id", "paper_id"),
    "sent_paper": ("paper_id",),
    "outbox_message": ("outbox_id",),
}


def _retype(type_: str) -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in SERIAL:
        columns = (*REFERENCES.get(table, ()), "id")
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {type_}" for c in columns))
        sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar_one()
        op.execute(f"ALTER SEQUENCE {sequence} AS {type_}")
    for table in ("sighting", "sent_paper", "outbox_message"):
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {type_}" for c in REFERENCES[table]))


def upgrade() -> None:
    _retype("bigint")


def downgrade() -> None:
    _retype("integer")
