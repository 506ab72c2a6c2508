"""The paper table loses ix_paper_first_ingested_at: an index every new paper paid for and one
query read (the web side's topic feed, papers first brought in since a time), which now finds
them through the dumps ingested since then and ix_paper_first_dump_id, the index the digest
window reads. A paper's first_ingested_at is its first dump's ingested_at, so the rows are the
same. The column stays.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_paper_first_ingested_at", table_name="paper")


def downgrade() -> None:
    op.create_index("ix_paper_first_ingested_at", "paper", ["first_ingested_at"])
