"""What the web side reads: sent digests, papers and their upvote history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, select

from paperdigest.model import Paper
from paperdigest.store.queries._sql import _chunks
from paperdigest.store.queries.papers import _PAPER_COLUMNS, _paper
from paperdigest.store.tables import dump_table, outbox_message_table, outbox_table, paper_table, sighting_table

_DELIVERED = ("sent", "accepted")


def sent_digests(conn: Connection, subscriber: str, limit: int) -> list[Row[Any]]:
    """The subscriber's delivered digests, newest first."""
    c = outbox_table.c
    stmt = (
        select(c.id, c.period, c.subject, c.papers, c.sent_at)
        .where(c.subscriber == subscriber.lower(), c.status.in_(_DELIVERED))
        .order_by(c.period.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))


def delivered_message(conn: Connection, subscriber: str, period: dt.datetime) -> bytes | None:
    """The message of a delivered digest, as it was mailed."""
    c = outbox_table.c
    stmt = (
        select(outbox_message_table.c.message)
        .join_from(outbox_table, outbox_message_table, outbox_message_table.c.outbox_id == c.id)
        .where(c.subscriber == subscriber.lower(), c.period == period, c.status.in_(_DELIVERED))
    )
    found = conn.execute(stmt).scalar_one_or_none()
    return bytes(found) if found is not None else None


def papers_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, Paper]:
    found: dict[int, Paper] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in conn.execute(select(*_PAPER_COLUMNS).where(paper_table.c.id.in_(chunk))):
            paper = _paper(row)
            found[paper.id] = paper
    return found


def paper_by_arxiv_id(conn: Connection, arxiv_id: str) -> Paper | None:
    row = conn.execute(select(*_PAPER_COLUMNS).where(paper_table.c.arxiv_id == arxiv_id)).first()
    return _paper(row) if row is not None else None


def recent_papers(conn: Connection, since: dt.datetime) -> list[Paper]:
    """Papers a non-backfill ingest first brought in since `since`: those whose first dump was
    ingested since then (a paper's first_ingested_at is its first dump's ingested_at), found
    through the dumps and ix_paper_first_dump_id (first_ingested_at has no index: revision 0008)."""
    dumps = select(dump_table.c.id).where(dump_table.c.ingested_at >= since)
    stmt = select(*_PAPER_COLUMNS).where(
        paper_table.c.first_dump_id.in_(dumps), paper_table.c.first_backfill.is_(False)
    )
    return [_paper(row) for row in conn.execute(stmt)]


def upvote_history(conn: Connection, paper_id: int) -> list[tuple[dt.date, int]]:
    """The paper's upvotes as each dump that listed it showed them (known counts), oldest first."""
    stmt = (
        select(dump_table.c.as_of, sighting_table.c.upvotes)
        .join_from(sighting_table, dump_table, dump_table.c.id == sighting_table.c.dump_id)
        .where(sighting_table.c.paper_id == paper_id, sighting_table.c.upvotes.is_not(None))
        .order_by(dump_table.c.as_of, dump_table.c.id)
    )
    return [(row.as_of, int(row.upvotes)) for row in conn.execute(stmt)]
