"""The schema of release 0.1.0 (what its create_all made): dumps, papers, sightings, the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dump",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("layout", sa.String(), nullable=False),
        sa.Column("ingested_at", MOMENT, nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash", name="uq_dump_content_hash"),
    )
    op.create_index("ix_dump_as_of", "dump", ["as_of"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber", sa.String(length=320), nullable=False),
        sa.Column("period", MOMENT, nullable=False),
        sa.Column("window_start", MOMENT, nullable=False),
        sa.Column("window_end", MOMENT, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", MOMENT, nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_at", MOMENT, nullable=True),
        sa.Column("sent_at", MOMENT, nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("papers", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber", "period", name="uq_outbox_subscriber_period"),
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "source_state",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("last_poll_at", MOMENT, nullable=True),
        sa.Column("last_success_at", MOMENT, nullable=True),
        sa.Column("last_change_at", MOMENT, nullable=True),
        sa.Column("last_error_at", MOMENT, nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_entries", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(), nullable=True),
        sa.Column("last_modified", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "paper",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sa.String(length=32), nullable=True),
        sa.Column("title_key", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("abstract", sa.String(), nullable=True),
        sa.Column("authors", sa.Integer(), nullable=True),
        sa.Column("org", sa.String(), nullable=True),
        sa.Column("published", sa.Date(), nullable=True),
        sa.Column("upvotes", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        sa.Column("first_dump_id", sa.Integer(), nullable=False),
        sa.Column("first_ingested_at", MOMENT, nullable=False),
        sa.Column("first_backfill", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["first_dump_id"], ["dump.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("arxiv_id", name="uq_paper_arxiv_id"),
    )
    op.create_index("ix_paper_first_ingested_at", "paper", ["first_ingested_at"])
    op.create_index("ix_paper_first_dump_id", "paper", ["first_dump_id"])
    op.create_index("ix_paper_upvotes", "paper", ["upvotes"])
    op.create_index("uq_paper_title_key_arxiv", "paper", ["title_key", sa.text("coalesce(arxiv_id, '')")], unique=True)
    op.create_index("ix_paper_first_seen", "paper", ["first_seen"])
    op.create_table(
        "outbox_message",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("outbox_id"),
    )
    op.create_table(
        "sighting",
        sa.Column("dump_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["dump_id"], ["dump.id"]),
        sa.ForeignKeyConstraint(["paper_id"], ["paper.id"]),
        sa.PrimaryKeyConstraint("dump_id", "paper_id"),
    )
    op.create_index("ix_sighting_paper_id", "sighting", ["paper_id"])
    op.create_table(
        "sent_paper",
        sa.Column("subscriber", sa.String(length=320), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=True),
        sa.Column("sent_at", MOMENT, nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["paper.id"]),
        sa.PrimaryKeyConstraint("subscriber", "paper_id"),
    )


def downgrade() -> None:
    for table in ("sent_paper", "sighting", "outbox_message", "paper", "source_state", "outbox", "dump"):
        op.drop_table(table)
