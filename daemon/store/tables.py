"""The SQLModel tables. They stay inside store/; the rest of the program sees model.py types."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# Ids are 64-bit (BIGINT, BIGSERIAL on PostgreSQL). SQLite keeps INTEGER: its INTEGER PRIMARY KEY
# is the 64-bit rowid already, and BIGINT there would be an ordinary column without autoincrement.
ID = BigInteger().with_variant(Integer(), "sqlite")


class StringList(TypeDecorator[tuple[str, ...]]):
    """A list of strings as JSON (SQL NULL when unknown), read back as a tuple: the model's
    papers are frozen and hashable."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return list(value) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[str, ...] | None:
        return tuple(value) if value is not None else None


def _strings() -> Any:
    return Field(default=None, sa_column=Column(StringList(), nullable=True))


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
        # No index on first_ingested_at (revision 0008): what reads it goes through the dumps.
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
    # What the daily-papers API adds (revision 0006); NULL when the listing did not say.
    author_names: tuple[str, ...] | None = _strings()
    ai_summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ai_keywords: tuple[str, ...] | None = _strings()
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    comments: int | None = None
    thumbnail: str | None = None
    withdrawn_at: dt.date | None = None
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
    # The same window in commit order: the papers first brought in by dumps after
    # window_start_dump, up to and including window_end_dump (dump ids grow in commit order,
    # since ingests are serialised). Clocks may differ between hosts; this order does not.
    window_start_dump: int | None = Field(default=None, sa_type=ID)
    window_end_dump: int | None = Field(default=None, sa_type=ID)
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
    # A source fetched by day (huggingface): the days up to this one were fetched after they ended.
    complete_through: dt.date | None = None


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


class ReplicaRow(SQLModel, table=True):
    """A running paperdigest process on this store, as its heartbeat says: daemons (leader or
    standby) and one-shot senders. A claim on an outbox row names the process's id; a process
    whose heartbeat stopped is gone, and its claims can be taken over."""

    __tablename__ = "replica"

    id: str = Field(primary_key=True, max_length=64)
    host: str
    pid: int
    role: str = Field(max_length=16)  # leader | standby | sender
    started_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_seen: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SubscriberRow(SQLModel, table=True):
    """A subscriber kept in the store: added with `paperdigest subscribers add` (`settings`, the
    subscriber's keys as JSON), or an address of the config's that unsubscribed (`settings` null).
    `unsubscribed_at` set: never mailed again until added again."""

    __tablename__ = "subscriber"

    email: str = Field(primary_key=True, max_length=320)
    settings: str | None = None
    added_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    unsubscribed_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


# Text compared by code point, as Python compares str: SQLite's default (BINARY) collation does,
# a PostgreSQL database made with "en_US" does not, so there the column is "C".
CODE_POINT_TEXT = Text().with_variant(Text(collation="C"), "postgresql")


class PaperTopicRow(SQLModel, table=True):
    """A paper that matches a topic (at least one keyword, no exclude), as the topic index was
    built for (topic_index): its keyword points and the key `papers --topic` ranks by, kept
    current by the ingest (paperdigest.topic_index). The key is the ranking's own, ascending:
    minus the score, minus the upvotes (unknown: 0), the title, the paper's id; so the best N
    are the first N entries of ix_paper_topic_rank for the topic."""

    __tablename__ = "paper_topic"
    # SQLite: WITHOUT ROWID, the rows kept in the primary key's tree (two trees to write, not three).
    __table_args__ = (
        Index("ix_paper_topic_rank", "topic", "neg_score", "neg_upvotes", "title", "paper_id"),
        {"sqlite_with_rowid": False},
    )

    paper_id: int = Field(foreign_key="paper.id", primary_key=True, sa_type=ID)
    topic: str = Field(primary_key=True, max_length=200)
    points: float  # the keyword points (score.py), whatever the upvotes
    neg_score: float  # -(upvote points + keyword points), computed as score.py computes it
    neg_upvotes: int  # -(upvotes or 0)
    title: str = Field(sa_column=Column(CODE_POINT_TEXT, nullable=False))


class TopicIndexRow(SQLModel, table=True):
    """What paper_topic was built for (one row, id 1): the topics and scoring weights as JSON
    (`spec`) and their fingerprint. A config whose fingerprint differs is not served from the
    table (`papers --topic` scans instead) until `paperdigest run` rebuilds it."""

    __tablename__ = "topic_index"

    id: int = Field(primary_key=True)
    fingerprint: str = Field(max_length=64)
    spec: str = Field(sa_column=Column(Text, nullable=False))
    built_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


dump_table = DumpRow.__table__  # type: ignore[attr-defined]
paper_table = PaperRow.__table__  # type: ignore[attr-defined]
sighting_table = SightingRow.__table__  # type: ignore[attr-defined]
sent_paper_table = SentPaperRow.__table__  # type: ignore[attr-defined]
source_state_table = SourceStateRow.__table__  # type: ignore[attr-defined]
outbox_table = OutboxRow.__table__  # type: ignore[attr-defined]
outbox_message_table = OutboxMessageRow.__table__  # type: ignore[attr-defined]
rejection_table = RejectionRow.__table__  # type: ignore[attr-defined]
replica_table = ReplicaRow.__table__  # type: ignore[attr-defined]
subscriber_table = SubscriberRow.__table__  # type: ignore[attr-defined]
paper_topic_table = PaperTopicRow.__table__  # type: ignore[attr-defined]
topic_index_table = TopicIndexRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
