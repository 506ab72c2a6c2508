"""The topic index's reads and writes (paper_topic, topic_index): paperdigest/topic_index.py
decides what they hold. The writes that go to the driver as SQL (the entries' insert and re-key,
the rebuild's stage) are in _raw.py, with the figures that made them raw; the rest is Core."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from paperdigest.store.queries._raw import (  # the raw writes, used through this module
    ENTRY_COLUMNS,
    STAGE,
    create_stage,
    drop_stage,
    insert_entries,
    replace_from_stage,
    rescore_entries,
    stage_entries,
)
from paperdigest.store.queries._sql import _chunks
from paperdigest.store.tables import dump_table, paper_table, paper_topic_table, sighting_table, topic_index_table

__all__ = [
    "ENTRY_COLUMNS", "STAGE", "best_entries", "count_entries", "create_stage", "delete_entries", "drop_stage",
    "entries", "index_spec", "insert_entries", "newest_dump", "papers_sighted_after", "papers_to_match",
    "replace_from_stage", "rescore_entries", "save_index", "stage_entries",
]

_pt = paper_topic_table.c

_SPEC = select(topic_index_table.c.spec).where(topic_index_table.c.id == 1)
_TO_MATCH = ("id", "upvotes", "title", "abstract", "ai_keywords")


def index_spec(conn: Connection) -> str | None:
    """What the index was built for (topic_index.spec); None before its first build."""
    value = conn.execute(_SPEC).scalar()
    return None if value is None else str(value)


def save_index(conn: Connection, fingerprint: str, spec: str, built_at: dt.datetime, empty: bool = True) -> None:
    """Record what the index is (being) built for; emptied first unless `empty=False`."""
    if empty:
        conn.execute(delete(paper_topic_table))
    conn.execute(delete(topic_index_table))
    conn.execute(insert(topic_index_table), {"id": 1, "fingerprint": fingerprint, "spec": spec, "built_at": built_at})


def forget_index(conn: Connection) -> None:
    """The index unbuilt: its entries and what it was built for deleted (its first build to come)."""
    conn.execute(delete(paper_topic_table))
    conn.execute(delete(topic_index_table))


def has_papers(conn: Connection) -> bool:
    return conn.execute(select(paper_table.c.id).limit(1)).first() is not None


def papers_to_match(conn: Connection, after: int, limit: int) -> list[Row[Any]]:
    """The next `limit` papers by id after `after`, as (id, upvotes, title, abstract, ai_keywords)."""
    c = paper_table.c
    stmt = select(*(c[name] for name in _TO_MATCH)).where(c.id > after).order_by(c.id).limit(limit)
    return list(conn.execute(stmt))


def newest_dump(conn: Connection) -> int:
    """The id of the newest committed dump; 0 before the first."""
    return int(conn.execute(select(func.coalesce(func.max(dump_table.c.id), 0))).scalar_one())


def papers_sighted_after(conn: Connection, dump_id: int) -> list[Row[Any]]:
    """The papers sighted in a dump newer than `dump_id` (so also those created since), as
    papers_to_match gives them, by id."""
    c = paper_table.c
    later = select(sighting_table.c.paper_id).where(sighting_table.c.dump_id > dump_id)
    stmt = select(*(c[name] for name in _TO_MATCH)).where(c.id.in_(later)).order_by(c.id)
    return list(conn.execute(stmt))


def count_entries(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(paper_topic_table)).scalar_one())


def delete_entries(conn: Connection, paper_ids: Iterable[int]) -> int:
    """The papers' entries deleted; how many."""
    deleted = 0
    for chunk in _chunks(sorted(set(paper_ids))):
        deleted += conn.execute(delete(paper_topic_table).where(_pt.paper_id.in_(chunk))).rowcount
    return deleted


def best_entries(conn: Connection, topic: str, since: dt.date | None, limit: int) -> list[tuple[int, float]]:
    """The first `limit` entries of a topic in ix_paper_topic_rank's order (papers first seen since
    `since`, when given), as (paper id, -score)."""
    stmt = select(_pt.paper_id, _pt.neg_score).where(_pt.topic == topic)
    if since is not None:
        stmt = stmt.join(paper_table, paper_table.c.id == _pt.paper_id).where(paper_table.c.first_seen >= since)
    stmt = stmt.order_by(_pt.neg_score, _pt.neg_upvotes, _pt.title, _pt.paper_id).limit(limit)
    return [(int(pid), float(neg_score)) for pid, neg_score in conn.execute(stmt)]


def entries(conn: Connection, topic: str | None = None) -> list[tuple[Any, ...]]:
    """Every entry as ENTRY_COLUMNS, by topic then in ranking order."""
    stmt = select(*(_pt[name] for name in ENTRY_COLUMNS))
    if topic is not None:
        stmt = stmt.where(_pt.topic == topic)
    order = (_pt.topic, _pt.neg_score, _pt.neg_upvotes, _pt.title, _pt.paper_id)
    return [tuple(row) for row in conn.execute(stmt.order_by(*order))]
