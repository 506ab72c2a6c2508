"""The SQLModel tables. They stay inside store/; the rest of the program sees model.py types."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Ids are 64-bit (BIGINT, BIGSERIAL on PostgreSQL). SQLite keeps INTEGER: its INTEGER PRIMARY KEY
# is the 64-bit rowid already, and BIGINT there would be an ordinary column without autoincrement.
ID = BigInteger().with_variant(Integer(), "sqlite")


class DumpRow(SQLModel, table=True):
    """One ingested dump. `content_hash` makes re-ingesting the same bytes a no-op."""

    __tablename__ = "dump"
    __table_args__ = (UniqueConstraint("content_hash", name="uq_dump_content_hash"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=ID)
    content_hash: str = Field(max_length=64)
    source: str
    as_of: dt.date = Field(index=True)
    layout: str
    ingested_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    backfill: bool = False
    status: str = "ingested"
    entries: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0


class PaperRow(SQLModel, table=True):
    """A paper, identified by its arXiv id, else by its folded title key."""

    __tablename__ = "paper"
    __table_args__ = (
        UniqueConstraint("arxiv_id", name="uq_paper_arxiv_id"),
        # Two papers known only by title are the same paper: (title key, arXiv id or '') is
        # unique, so the id-less share '' and collide. One index does this and the lookups by
        # title key (its first column), where a partial unique index beside a plain one would
        # cost a second random-order index to keep up on every ingest.
        Index("uq_paper_title_key_arxiv", "title_key", text("coalesce(arxiv_id, '')"), unique=True),
        Index("ix_paper_upvotes", "upvotes"),
        Index("ix_paper_first_ingested_at", "first_ingested_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=ID)
    arxiv_id: str | None = Field(default=None, max_length=32)
    title_key: str
    title: str
    abstract: str | None = None
    authors: int | None = None
    org: str | None = None
    published: dt.date | None = None
    upvotes: int | None = None
    first_seen: dt.date = Field(index=True)
    last_seen: dt.date
    first_dump_id: int = Field(foreign_key="dump.id", index=True, sa_type=ID)
    first_ingested_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    first_backfill: bool = False


class SightingRow(SQLModel, table=True):
    """A paper as one dump showed it: the upvote history."""

    __tablename__ = "sighting"

    dump_id: int = Field(foreign_key="dump.id", primary_key=True, sa_type=ID)
    paper_id: int = Field(foreign_key="paper.id", primary_key=True, index=True, sa_type=ID)
    position: int
    upvotes: int | None = None


class SentPaperRow(SQLModel, table=True):
    """A paper that went out to a subscriber, with its upvotes then (for the Rising section)."""

    __tablename__ = "sent_paper"

    subscriber: str = Field(primary_key=True, max_length=320)
    paper_id: int = Field(foreign_key="paper.id", primary_key=True, sa_type=ID)
    upvotes: int | None = None
    sent_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class OutboxRow(SQLModel, table=True):
    """One digest for one subscriber and period: written before sending, marked after.

    status: pending -> sending (claimed) -> accepted (the server answered 250: committed alone, at
    once) -> sent (its papers recorded as sent to the subscriber) | failed; `empty` when there was
    nothing to send.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("subscriber", "period", name="uq_outbox_subscriber_period"),
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=ID)
    subscriber: str = Field(max_length=320)
    period: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    window_start: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    window_end: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_error: str | None = None
    claimed_by: str | None = None
    claimed_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    message_id: str = Field(max_length=255)
    subject: str
    papers: str = "{}"  # JSON object: paper id -> its upvotes as shown in the digest


class OutboxMessageRow(SQLModel, table=True):
    """The rendered message of an outbox row, kept apart so status updates stay small."""

    __tablename__ = "outbox_message"

    outbox_id: int = Field(foreign_key="outbox.id", primary_key=True, sa_type=ID)
    message: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SourceStateRow(SQLModel, table=True):
    """How each source has been doing: the daemon's memory of polls lives in the store."""

    __tablename__ = "source_state"

    name: str = Field(primary_key=True, max_length=200)
    last_poll_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_success_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_change_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_error_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_error: str | None = None
    last_entries: int | None = None
    failures: int = 0
    etag: str | None = None
    last_modified: str | None = None


class RejectionRow(SQLModel, table=True):
    """A dump refused by `run`, `ingest` or `backfill`: shown by `status` (and turning it unhealthy)
    for a week, or until a newer good dump from the same source is ingested (`resolved_at`).

    `source` is the daemon source's name, or for the commands the dump's folder (a URL for a
    fetched page); `file_key` is the dump's content hash, or its path when it could not be read,
    so the same bad file rejected again updates its row instead of adding one.
    """

    __tablename__ = "rejection"
    __table_args__ = (UniqueConstraint("source", "file_key", name="uq_rejection_source_file"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=ID)
    source: str
    file_key: str
    file: str
    reason: str
    as_of: dt.date
    rejected_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    resolved_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


dump_table = DumpRow.__table__  # type: ignore[attr-defined]
paper_table = PaperRow.__table__  # type: ignore[attr-defined]
sighting_table = SightingRow.__table__  # type: ignore[attr-defined]
sent_paper_table = SentPaperRow.__table__  # type: ignore[attr-defined]
source_state_table = SourceStateRow.__table__  # type: ignore[attr-defined]
outbox_table = OutboxRow.__table__  # type: ignore[attr-defined]
outbox_message_table = OutboxMessageRow.__table__  # type: ignore[attr-defined]
rejection_table = RejectionRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
