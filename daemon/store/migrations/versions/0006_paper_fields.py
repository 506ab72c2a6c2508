"""Every field the daily-papers API gives: author names, the AI summary and keywords, the code
repository and its stars, the project page, comments, the thumbnail, the withdrawn date; and,
for a source fetched by day, the last day it holds complete.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PAPER_COLUMNS = (
    ("author_names", sa.JSON(none_as_null=True)),
    ("ai_summary", sa.Text()),
    ("ai_keywords", sa.JSON(none_as_null=True)),
    ("github_repo", sa.String()),
    ("github_stars", sa.Integer()),
    ("project_page", sa.String()),
    ("comments", sa.Integer()),
    ("thumbnail", sa.String()),
    ("withdrawn_at", sa.Date()),
)


def upgrade() -> None:
    with op.batch_alter_table("paper") as batch:
        for name, kind in PAPER_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("complete_through", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("complete_through")
    with op.batch_alter_table("paper") as batch:
        for name, _ in reversed(PAPER_COLUMNS):
            batch.drop_column(name)
