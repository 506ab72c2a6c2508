"""The topic index's reads and writes (paper_topic, topic_index): paperdigest/topic_index.py
decides what they hold. Two writes per dump take one statement each on PostgreSQL (the values
as arrays), where Core's executemany would send a statement per row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from paperdigest.store.queries._sql import _chunks
from paperdigest.store.tables import dump_table, paper_table, paper_topic_table, sighting_table, topic_index_table

_pt = paper_topic_table.c
ENTRY_COLUMNS = ("paper_id", "topic", "points", "neg_score", "neg_upvotes", "title")

_SPEC = select(topic_index_table.c.spec).where(topic_index_table.c.id == 1)
_INSERT = insert(paper_topic_table)
_PG_INSERT = (f"INSERT INTO paper_topic ({', '.join(ENTRY_COLUMNS)}) SELECT * FROM "
              "unnest(%s::bigint[], %s::varchar[], %s::float8[], %s::float8[], %s::int[], %s::text[])")
# New keys from the upvote points (computed by the caller) and the stored keyword points: the
# database adds the two doubles as Python does, so the key is the float score.py makes.
_PG_RESCORE = ("UPDATE paper_topic AS t SET neg_score = -(v.up + t.points), neg_upvotes = v.neg_upvotes "
               "FROM unnest(%s::float8[], %s::int[], %s::bigint[]) AS v(up, neg_upvotes, paper_id) "
               "WHERE t.paper_id = v.paper_id")
_SQLITE_RESCORE = "UPDATE paper_topic SET neg_score = -(? + points), neg_upvotes = ? WHERE paper_id = ?"
_TO_MATCH = ("id", "upvotes", "title", "abstract", "ai_keywords")
_SQLITE_INSERT = (f"INSERT INTO paper_topic ({', '.join(ENTRY_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})")


def index_spec(conn: Connection) -> str | None:
    """What the index was built for (topic_index.spec); None before its first build."""
    value = conn.execute(_SPEC).scalar()
    return None if value is None else str(value)


def save_index(conn: Connection, fingerprint: str, spec: str, built_at: dt.datetime) -> None:
    """Empty the index and record what it is being built for."""
    conn.execute(delete(paper_topic_table))
    conn.execute(delete(topic_index_table))
    conn.execute(insert(topic_index_table), {"id": 1, "fingerprint": fingerprint, "spec": spec, "built_at": built_at})


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


def insert_entry_rows(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """insert_entries of rows as tuples in ENTRY_COLUMNS' order (a rebuild keeps its entries so:
    a third of a dict's memory), one statement (PostgreSQL) or one executemany per 50,000."""
    if not rows:
        return
    step = 50_000
    for start in range(0, len(rows), step):
        part = rows[start:start + step]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_PG_INSERT, tuple(list(column) for column in zip(*part, strict=True)))
        else:
            conn.exec_driver_sql(_SQLITE_INSERT, list(part))


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_INSERT, tuple([row[name] for row in rows] for name in ENTRY_COLUMNS))
        return
    conn.execute(_INSERT, rows)


def delete_entries(conn: Connection, paper_ids: Iterable[int]) -> None:
    for chunk in _chunks(sorted(set(paper_ids))):
        conn.execute(delete(paper_topic_table).where(_pt.paper_id.in_(chunk)))


def rescore_entries(conn: Connection, values: Sequence[tuple[float, int, int]]) -> None:
    """Each (upvote points, -upvotes, paper id): the paper's entries get the new key."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_RESCORE, tuple(list(column) for column in zip(*values, strict=True)))
        return
    conn.exec_driver_sql(_SQLITE_RESCORE, list(values))


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
