"""The topic index: each paper that matches a topic, with its keyword points and the key
`papers --topic` ranks by (paper_topic), and what it was built for (topic_index). Created
empty: the first ingest, or the daemon's start, with a config builds it; until then
`papers --topic` reads the papers as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CODE_POINT_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "paper_topic",
        sa.Column("paper_id", ID, nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("neg_score", sa.Float(), nullable=False),
        sa.Column("neg_upvotes", sa.Integer(), nullable=False),
        sa.Column("title", CODE_POINT_TEXT, nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["paper.id"]),
        sa.PrimaryKeyConstraint("paper_id", "topic"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_paper_topic_rank", "paper_topic", ["topic", "neg_score", "neg_upvotes", "title", "paper_id"])
    op.create_table(
        "topic_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("topic_index")
    op.drop_index("ix_paper_topic_rank", table_name="paper_topic")
    op.drop_table("paper_topic")
