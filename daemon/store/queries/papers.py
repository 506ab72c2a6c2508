"""Papers, dumps and sightings: the bulk reads and writes of ingest, and the reads of `papers` and `status`."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Generator, Iterable
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select

from paperdigest.model import PAPER_FIELDS, Paper, paper_from
from paperdigest.store.queries import _raw
from paperdigest.store.queries._sql import _chunks, code_point_order
from paperdigest.store.tables import (
    dump_table,
    paper_table,
    sighting_table,
)

# The paper columns, from the model: Paper's fields (in its order), then the identity key.
# An ingest writes all but the id and the first-ingest bookkeeping.
_PAPER_READ = (*PAPER_FIELDS, "title_key")
WRITTEN_PAPER_COLUMNS = tuple(name for name in _PAPER_READ if name != "id")


def _paper(row: Row[Any]) -> Paper:
    """A row selected as _PAPER_COLUMNS (Core: typed values)."""
    return paper_from(row[: len(PAPER_FIELDS)])


_PAPER_COLUMNS = [paper_table.c[name] for name in _PAPER_READ]

# The statements of every ingest are built once, here: building one costs more than running it
# (70 of the 115 µs a small SELECT takes through Core on SQLite).
_DUMP_BY_HASH = select(dump_table).where(dump_table.c.content_hash == bindparam("content_hash"))
_INSERT_DUMP = insert(dump_table).returning(dump_table.c.id)


def paper_rows_by_identity(
    conn: Connection, arxiv_ids: Iterable[str], title_keys: Iterable[str]
) -> list[tuple[Any, ...]]:
    """Every stored paper whose arXiv id or title key is among the given (two indexed IN queries),
    as the store's row: its values in PAPER_FIELDS order, then its title key. Rows, not Papers:
    the ingest's diff works on them directly, by the hundred a dump."""
    found: dict[int, tuple[Any, ...]] = {}
    for column, values in (("arxiv_id", sorted(set(arxiv_ids))), ("title_key", sorted(set(title_keys)))):
        for chunk in _chunks(values):
            for row in _raw.papers_where(conn, _PAPER_READ, column, chunk):
                found[row[0]] = row
    return list(found.values())


def papers_by_identity(
    conn: Connection, arxiv_ids: Iterable[str], title_keys: Iterable[str]
) -> list[tuple[Paper, str]]:
    """paper_rows_by_identity, as Papers with their title keys."""
    return [(paper_from(row[:-1]), row[-1]) for row in paper_rows_by_identity(conn, arxiv_ids, title_keys)]


def dump_by_hash(conn: Connection, content_hash: str) -> Row[Any] | None:
    return conn.execute(_DUMP_BY_HASH, {"content_hash": content_hash}).first()


def insert_dump(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(_INSERT_DUMP, values).scalar_one())


@functools.cache
def _values_getter(columns: tuple[str, ...]) -> Callable[[Any, str], tuple[Any, ...]]:
    """A function giving the stored values of a paper (a Paper, or anything with its attributes,
    such as the diff's working copy) in `columns`: its fields and its title key. One attrgetter
    and a splice, not a getattr per column and row (a dump writes some 5,000 values)."""
    others = tuple(name for name in columns if name != "title_key")
    fields = attrgetter(*others) if len(others) > 1 else lambda paper: (getattr(paper, others[0]),)
    if "title_key" not in columns:
        return lambda paper, key: fields(paper)
    at = columns.index("title_key")
    if at == len(columns) - 1:
        return lambda paper, key: (*fields(paper), key)
    return lambda paper, key: (*fields(paper)[:at], key, *fields(paper)[at:])


def insert_papers(conn: Connection, papers: list[tuple[Any, str]], first: dict[str, Any]) -> list[int]:
    """Insert new papers (with their title keys) in one batch; `first` records the dump that
    brought them in. Their ids come back in the order given (the papers' own ids are ignored)."""
    if not papers:
        return []
    extra = tuple(first.values())
    values = _values_getter(WRITTEN_PAPER_COLUMNS)
    rows = [values(paper, key) + extra for paper, key in papers]
    return _raw.insert_papers(conn, (*WRITTEN_PAPER_COLUMNS, *first), rows)


def update_papers(
    conn: Connection, papers: list[tuple[Any, str]], fields: tuple[str, ...] = WRITTEN_PAPER_COLUMNS
) -> None:
    """Write back `fields` of existing papers (with their title keys), one executemany."""
    if not papers:
        return
    values = _values_getter(fields)
    _raw.update_papers(conn, fields, [(*values(paper, key), paper.id) for paper, key in papers])


def insert_sightings(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """A dump's sightings, each (dump_id, paper_id, position, upvotes), in one statement."""
    _raw.insert_sightings(conn, rows)


def _top_order(conn: Connection) -> tuple[Any, ...]:
    """After the upvotes: the newest first-seen, then title (by code point), then id (a full tie)."""
    return (paper_table.c.first_seen.desc(), code_point_order(conn, paper_table.c.title), paper_table.c.id)


def top_papers(conn: Connection, limit: int | None, since: dt.date | None = None) -> list[Paper]:
    """Best first: upvotes (unknown last), then the newest first-seen, then title.

    Two statements, each of which ix_paper_upvotes answers in order and stops at `limit`: the
    papers with known upvotes, most first, then (when they are fewer than `limit`) those whose
    upvotes are unknown. One `ORDER BY upvotes IS NULL, ...` sorted the whole table first (191 ms
    at a million papers, against 0.3 ms)."""
    known = select(*_PAPER_COLUMNS).where(paper_table.c.upvotes.is_not(None))
    unknown = select(*_PAPER_COLUMNS).where(paper_table.c.upvotes.is_(None))
    if since is not None:
        known = known.where(paper_table.c.first_seen >= since)
        unknown = unknown.where(paper_table.c.first_seen >= since)
    known = known.order_by(paper_table.c.upvotes.desc(), *_top_order(conn))
    unknown = unknown.order_by(*_top_order(conn))
    if limit is not None:
        known = known.limit(limit)
    found = [_paper(row) for row in conn.execute(known)]
    if limit is not None:
        if len(found) >= limit:
            return found
        unknown = unknown.limit(limit - len(found))
    return found + [_paper(row) for row in conn.execute(unknown)]


# What ranking by a topic reads of each paper: its id, upvotes and the texts keywords match.
RANKED_COLUMNS = ("id", "upvotes", "title", "abstract", "ai_keywords")


def papers_to_rank(conn: Connection, known: bool, since: dt.date | None = None) -> Generator[Row[Any]]:
    """Papers as RANKED_COLUMNS, streamed (a server-side cursor on PostgreSQL; SQLite reads as it
    goes): `known` those with known upvotes, most first (ix_paper_upvotes), else those whose upvotes
    are unknown. A ranking can stop reading once no further paper can make its list."""
    c = paper_table.c
    stmt = select(*(c[name] for name in RANKED_COLUMNS))
    stmt = stmt.where(c.upvotes.is_not(None)).order_by(c.upvotes.desc()) if known else stmt.where(c.upvotes.is_(None))
    if since is not None:
        stmt = stmt.where(c.first_seen >= since)
    with conn.execute(stmt.execution_options(yield_per=1000)) as rows:  # closed when the reader stops early
        yield from rows


def counts(conn: Connection) -> dict[str, int]:
    return {
        "papers": int(conn.execute(select(func.count()).select_from(paper_table)).scalar_one()),
        "dumps": int(conn.execute(select(func.count()).select_from(dump_table)).scalar_one()),
        "sightings": int(conn.execute(select(func.count()).select_from(sighting_table)).scalar_one()),
        "papers_with_arxiv_id": int(
            conn.execute(
                select(func.count()).select_from(paper_table).where(paper_table.c.arxiv_id.is_not(None))
            ).scalar_one()
        ),
    }


def dumps_between(conn: Connection, first: dt.date, last: dt.date) -> list[tuple[str, dt.date]]:
    """(source, capture date) of every dump captured from `first` to `last`."""
    c = dump_table.c
    stmt = select(c.source, c.as_of).where(c.as_of >= first, c.as_of <= last)
    return [(row.source, row.as_of) for row in conn.execute(stmt)]


def last_dumps(conn: Connection, limit: int) -> list[Row[Any]]:
    stmt = select(dump_table).order_by(dump_table.c.ingested_at.desc(), dump_table.c.id.desc()).limit(limit)
    return list(conn.execute(stmt))


def papers_of_dumps(conn: Connection, after: int, upto: int) -> list[Paper]:
    """Papers a non-backfill ingest first brought in by the dumps after `after`, up to and
    including `upto` (dump ids, in commit order): the digest window."""
    stmt = select(*_PAPER_COLUMNS).where(
        paper_table.c.first_dump_id > after,
        paper_table.c.first_dump_id <= upto,
        paper_table.c.first_backfill.is_(False),
    )
    return [_paper(row) for row in conn.execute(stmt)]


def newest_dump(conn: Connection, at: dt.datetime | None = None) -> int:
    """The id of the newest dump committed (ingested at or before `at`, when given); 0 for none."""
    stmt = select(func.coalesce(func.max(dump_table.c.id), 0))
    if at is not None:
        stmt = stmt.where(dump_table.c.ingested_at <= at)
    return int(conn.execute(stmt).scalar_one())


def papers_first_seen_since(conn: Connection, since: dt.date) -> list[Paper]:
    stmt = select(*_PAPER_COLUMNS).where(paper_table.c.first_seen >= since)
    return [_paper(row) for row in conn.execute(stmt)]


def all_papers(conn: Connection) -> list[Paper]:
    return [_paper(row) for row in conn.execute(select(*_PAPER_COLUMNS))]
