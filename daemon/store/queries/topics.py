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
_SQLITE_INSERT = f"INSERT INTO paper_topic ({', '.join(ENTRY_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
_PG_INSERT = (f"INSERT INTO paper_topic ({', '.join(ENTRY_COLUMNS)}) SELECT * FROM "
              "unnest(%s::bigint[], %s::varchar[], %s::float8[], %s::float8[], %s::int[], %s::text[])")
# New keys from the upvote points (computed by the caller) and the stored keyword points: the
# database adds the two doubles as Python does, so the key is the float score.py makes.
_PG_RESCORE = ("UPDATE paper_topic AS t SET neg_score = -(v.up + t.points), neg_upvotes = v.neg_upvotes "
               "FROM unnest(%s::float8[], %s::int[], %s::bigint[]) AS v(up, neg_upvotes, paper_id) "
               "WHERE t.paper_id = v.paper_id")
_SQLITE_RESCORE = "UPDATE paper_topic SET neg_score = -(? + points), neg_upvotes = ? WHERE paper_id = ?"
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


# A rebuild's entries, staged in a temporary table of its connection while it reads the papers
# (memory stays flat whatever the store's size; on SQLite the temporary database is another file,
# so writing it takes no lock on the store), then copied into paper_topic under the ingests' lock.
STAGE = "paper_topic_rebuild"
_STAGE_COLUMNS = ("paper_id bigint, topic text, points double precision, neg_score double precision, "
                  "neg_upvotes integer, title text")
_RANK = next(index for index in paper_topic_table.indexes if index.name == "ix_paper_topic_rank")


def create_stage(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {STAGE} ({_STAGE_COLUMNS})")


def drop_stage(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")


def stage_entries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in ENTRY_COLUMNS' order into the stage: one statement (PostgreSQL), one executemany."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_INSERT.replace("INTO paper_topic ", f"INTO {STAGE} "),
                             tuple(list(column) for column in zip(*rows, strict=True)))
        return
    conn.exec_driver_sql(_SQLITE_INSERT.replace("INTO paper_topic ", f"INTO {STAGE} "), list(rows))


def replace_from_stage(conn: Connection) -> None:
    """paper_topic emptied and filled from the stage, in the caller's transaction. On SQLite the
    ranking index is dropped first and made again after: row by row, deleting and inserting its
    entries (in random order) took 9 s of the 11 s for 400,000 entries; sorted in one pass, 1 s."""
    columns = ", ".join(ENTRY_COLUMNS)
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        _RANK.drop(conn)
    conn.execute(delete(paper_topic_table))
    conn.exec_driver_sql(f"INSERT INTO paper_topic ({columns}) SELECT {columns} FROM {STAGE} "
                         "ORDER BY paper_id, topic")
    if sqlite:
        _RANK.create(conn)


def count_entries(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(paper_topic_table)).scalar_one())


def insert_entries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """The entries, each a tuple in ENTRY_COLUMNS order. On SQLite straight to sqlite3's
    executemany, no dict per row: 0.23-0.26 ms against Core's 0.46-0.49 ms for 130 entries
    (a dump's worth and more), the dicts already built, in process on a file store."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_INSERT, tuple(list(column) for column in zip(*rows, strict=True)))
        return
    conn.exec_driver_sql(_SQLITE_INSERT, list(rows))


def delete_entries(conn: Connection, paper_ids: Iterable[int]) -> int:
    """The papers' entries deleted; how many."""
    deleted = 0
    for chunk in _chunks(sorted(set(paper_ids))):
        deleted += conn.execute(delete(paper_topic_table).where(_pt.paper_id.in_(chunk))).rowcount
    return deleted


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
