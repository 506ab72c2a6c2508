"""The store's tables. They stay inside store/; the rest of the program sees model.py types.

Plain SQLAlchemy Core tables: they were SQLModel classes, whose ORM and pydantic machinery cost
every command a tenth of a second of imports and nothing here used (issue 13, start-up). The
columns, types, defaults, constraints and indexes are the same (tests/test_migrations.py holds
them to the migrations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

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


metadata = MetaData()


def _id() -> Column[Any]:
    return Column("id", ID, primary_key=True)


def _when(name: str, nullable: bool = False, index: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable, index=index)


# One ingested dump. `content_hash` makes re-ingesting the same bytes a no-op.
dump_table = Table(
    "dump",
    metadata,
    _id(),
    Column("content_hash", String(64), nullable=False),
    Column("source", String, nullable=False),
    Column("as_of", Date, nullable=False, index=True),
    Column("layout", String, nullable=False),
    _when("ingested_at"),
    Column("backfill", Boolean, nullable=False, default=False),
    Column("status", String, nullable=False, default="ingested"),
    Column("entries", Integer, nullable=False, default=0),
    Column("new", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    UniqueConstraint("content_hash", name="uq_dump_content_hash"),
)

# A paper, identified by its arXiv id, else by its folded title key.
paper_table = Table(
    "paper",
    metadata,
    _id(),
    Column("arxiv_id", String(32), nullable=True),
    Column("title_key", String, nullable=False),
    Column("title", String, nullable=False),
    Column("abstract", String, nullable=True),
    Column("authors", Integer, nullable=True),
    Column("org", String, nullable=True),
    Column("published", Date, nullable=True),
    Column("upvotes", Integer, nullable=True),
    # What the daily-papers API adds (revision 0006); NULL when the listing did not say.
    Column("author_names", StringList(), nullable=True),
    Column("ai_summary", Text, nullable=True),
    Column("ai_keywords", StringList(), nullable=True),
    Column("github_repo", String, nullable=True),
    Column("github_stars", Integer, nullable=True),
    Column("project_page", String, nullable=True),
    Column("comments", Integer, nullable=True),
    Column("thumbnail", String, nullable=True),
    Column("withdrawn_at", Date, nullable=True),
    Column("first_seen", Date, nullable=False, index=True),
    Column("last_seen", Date, nullable=False),
    Column("first_dump_id", ID, ForeignKey("dump.id"), nullable=False, index=True),
    _when("first_ingested_at"),
    Column("first_backfill", Boolean, nullable=False, default=False),
    UniqueConstraint("arxiv_id", name="uq_paper_arxiv_id"),
    # Two papers known only by title are the same paper: (title key, arXiv id or '') is
    # unique, so the id-less share '' and collide. One index does this and the lookups by
    # title key (its first column), where a partial unique index beside a plain one would
    # cost a second random-order index to keep up on every ingest.
    Index("uq_paper_title_key_arxiv", "title_key", text("coalesce(arxiv_id, '')"), unique=True),
    Index("ix_paper_upvotes", "upvotes"),
    Index("ix_paper_first_ingested_at", "first_ingested_at"),
)

# A paper as one dump showed it: the upvote history.
sighting_table = Table(
    "sighting",
    metadata,
    Column("dump_id", ID, ForeignKey("dump.id"), primary_key=True),
    Column("paper_id", ID, ForeignKey("paper.id"), primary_key=True, index=True),
    Column("position", Integer, nullable=False),
    Column("upvotes", Integer, nullable=True),
)

# A paper that went out to a subscriber, with its upvotes then (for the Rising section).
sent_paper_table = Table(
    "sent_paper",
    metadata,
    Column("subscriber", String(320), primary_key=True),
    Column("paper_id", ID, ForeignKey("paper.id"), primary_key=True),
    Column("upvotes", Integer, nullable=True),
    _when("sent_at"),
)

# One digest for one subscriber and period: written before sending, marked after.
#
# status: pending -> sending (claimed) -> accepted (the server answered 250: committed alone, at
# once) -> sent (its papers recorded as sent to the subscriber) | failed; `empty` when there was
# nothing to send.
outbox_table = Table(
    "outbox",
    metadata,
    _id(),
    Column("subscriber", String(320), nullable=False),
    _when("period"),
    _when("window_start"),
    _when("window_end"),
    # The same window in commit order: the papers first brought in by dumps after
    # window_start_dump, up to and including window_end_dump (dump ids grow in commit order,
    # since ingests are serialised). Clocks may differ between hosts; this order does not.
    Column("window_start_dump", ID, nullable=True),
    Column("window_end_dump", ID, nullable=True),
    _when("created_at"),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    _when("next_attempt_at"),
    Column("last_error", String, nullable=True),
    Column("claimed_by", String, nullable=True),
    _when("claimed_at", nullable=True),
    _when("sent_at", nullable=True),
    Column("message_id", String(255), nullable=False),
    Column("subject", String, nullable=False),
    Column("papers", String, nullable=False, default="{}"),  # JSON object: paper id -> its upvotes as shown
    UniqueConstraint("subscriber", "period", name="uq_outbox_subscriber_period"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
)

# The rendered message of an outbox row, kept apart so status updates stay small.
outbox_message_table = Table(
    "outbox_message",
    metadata,
    Column("outbox_id", ID, ForeignKey("outbox.id"), primary_key=True),
    Column("message", LargeBinary, nullable=False),
)

# How each source has been doing: the daemon's memory of polls lives in the store.
source_state_table = Table(
    "source_state",
    metadata,
    Column("name", String(200), primary_key=True),
    _when("last_poll_at", nullable=True),
    _when("last_success_at", nullable=True),
    _when("last_change_at", nullable=True),
    _when("last_error_at", nullable=True),
    Column("last_error", String, nullable=True),
    Column("last_entries", Integer, nullable=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("etag", String, nullable=True),
    Column("last_modified", String, nullable=True),
    # A source fetched by day (huggingface): the days up to this one were fetched after they ended.
    Column("complete_through", Date, nullable=True),
)

# A dump refused by `run`, `ingest` or `backfill`: shown by `status` (and turning it unhealthy)
# for a week, or until a newer good dump from the same source is ingested (`resolved_at`).
#
# `source` is the daemon source's name, or for the commands the dump's folder (a URL for a
# fetched page); `file_key` is the dump's content hash, or its path when it could not be read,
# so the same bad file rejected again updates its row instead of adding one.
rejection_table = Table(
    "rejection",
    metadata,
    _id(),
    Column("source", String, nullable=False),
    Column("file_key", String, nullable=False),
    Column("file", String, nullable=False),
    Column("reason", String, nullable=False),
    Column("as_of", Date, nullable=False),
    _when("rejected_at", index=True),
    _when("resolved_at", nullable=True),
    UniqueConstraint("source", "file_key", name="uq_rejection_source_file"),
)

# A running paperdigest process on this store, as its heartbeat says: daemons (leader or
# standby) and one-shot senders. A claim on an outbox row names the process's id; a process
# whose heartbeat stopped is gone, and its claims can be taken over.
replica_table = Table(
    "replica",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", String(16), nullable=False),  # leader | standby | sender
    _when("started_at"),
    _when("last_seen"),
)

# A subscriber kept in the store: added with `paperdigest subscribers add` (`settings`, the
# subscriber's keys as JSON), or an address of the config's that unsubscribed (`settings` null).
# `unsubscribed_at` set: never mailed again until added again.
subscriber_table = Table(
    "subscriber",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("settings", String, nullable=True),
    _when("added_at"),
    _when("unsubscribed_at", nullable=True),
)
