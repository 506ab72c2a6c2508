"""Papers, dumps and sightings: the bulk reads and writes of ingest, and the reads of `papers` and `status`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Date, Row, bindparam, func, insert, select, update

from paperdigest.model import PAPER_FIELDS, Paper, paper_from
from paperdigest.store.queries._sql import (
    _JSON,
    _chunks,
    _executemany,
    _fast,
    _insert_one,
    _marks,
    _sqlite_params,
)
from paperdigest.store.tables import (
    dump_table,
    paper_table,
    sighting_table,
)

# The paper columns, from the model: Paper's fields (in its order), then the identity key.
# An ingest writes all but the id and the first-ingest bookkeeping.
_PAPER_READ = (*PAPER_FIELDS, "title_key")
WRITTEN_PAPER_COLUMNS = tuple(name for name in _PAPER_READ if name != "id")
_NEW_PAPER_COLUMNS = (*WRITTEN_PAPER_COLUMNS, "first_dump_id", "first_ingested_at", "first_backfill")
_SIGHTING_COLUMNS = ("dump_id", "paper_id", "position", "upvotes")

def _paper(row: Row[Any]) -> Paper:
    """A row selected as _PAPER_COLUMNS (Core: typed values)."""
    return paper_from(row[: len(PAPER_FIELDS)])


_PAPER_COLUMNS = [paper_table.c[name] for name in _PAPER_READ]


def papers_by_identity(
    conn: Connection, arxiv_ids: Iterable[str], title_keys: Iterable[str]
) -> list[tuple[Paper, str]]:
    """Every stored paper (with its title key) whose arXiv id or title key is among the given:
    two indexed IN queries."""
    found: dict[int, tuple[Paper, str]] = {}
    sqlite = _fast(conn)
    for column, values in (
        (paper_table.c.arxiv_id, sorted(set(arxiv_ids))),
        (paper_table.c.title_key, sorted(set(title_keys))),
    ):
        for chunk in _chunks(values):
            if sqlite:  # the hot path of ingest: plain SQL, dates parsed here
                rows = conn.exec_driver_sql(
                    f"SELECT {_SELECT_LIST} FROM paper WHERE {column.name} IN ({_marks(chunk)})",
                    tuple(chunk),
                ).fetchall()
                for raw in rows:
                    found[raw[0]] = (_paper_from_tuple(raw), raw[_KEY_AT])
                continue
            for row in conn.execute(select(*_PAPER_COLUMNS).where(column.in_(chunk))):
                found[row.id] = (_paper(row), row.title_key)
    return list(found.values())


_SELECT_LIST = ", ".join(_PAPER_READ)
_KEY_AT = len(PAPER_FIELDS)  # where the title key sits in a row of _SELECT_LIST
# Where Paper's dates sit in such a row: SQLite's driver hands them back as text.
_DATE_AT = tuple(i for i, name in enumerate(PAPER_FIELDS) if isinstance(paper_table.c[name].type, Date))
# And its lists of strings, as JSON text.
_JSON_AT = tuple(i for i, name in enumerate(PAPER_FIELDS) if name in _JSON)


def _paper_from_tuple(raw: Any) -> Paper:
    """A row of `SELECT _SELECT_LIST` as SQLite's driver returns it (dates and lists as text)."""
    values = list(raw[:_KEY_AT])
    for at in _DATE_AT:
        if isinstance(values[at], str):
            values[at] = dt.date.fromisoformat(values[at])
    for at in _JSON_AT:
        if isinstance(values[at], str):
            values[at] = tuple(json.loads(values[at]))
    return paper_from(values)


def dump_by_hash(conn: Connection, content_hash: str) -> Row[Any] | None:
    if _fast(conn):  # asked once per dump, and nearly always absent: skip the Core round
        found = conn.exec_driver_sql("SELECT 1 FROM dump WHERE content_hash = ?", (content_hash,)).first()
        if found is None:
            return None
    return conn.execute(select(dump_table).where(dump_table.c.content_hash == content_hash)).first()


def insert_dump(conn: Connection, values: dict[str, Any]) -> int:
    if _fast(conn):
        return _insert_one(conn, "dump", values)
    return int(conn.execute(insert(dump_table).returning(dump_table.c.id), values).scalar_one())


def _paper_row(paper: Any, key: str, columns: Sequence[str]) -> dict[str, Any]:
    """The stored values of a paper (a Paper, or anything with its attributes, such as the diff's
    working copy): its fields and its title key."""
    row = {name: getattr(paper, name) for name in columns if name != "title_key"}
    if "title_key" in columns:
        row["title_key"] = key
    return row


def insert_papers(conn: Connection, papers: list[tuple[Any, str]], first: dict[str, Any]) -> list[int]:
    """Insert new papers (with their title keys) in one batch; `first` records the dump that
    brought them in. Their ids come back in the order given (the papers' own ids are ignored)."""
    if not papers:
        return []
    rows = [_paper_row(paper, key, WRITTEN_PAPER_COLUMNS) | first for paper, key in papers]
    if _fast(conn):
        # The ingest holds SQLite's write lock (BEGIN IMMEDIATE): ids can be handed out here,
        # and a plain executemany is several times cheaper than INSERT ... RETURNING.
        start = int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM paper").scalar_one()) + 1
        ids = list(range(start, start + len(rows)))
        columns, params = _sqlite_params(rows, _NEW_PAPER_COLUMNS)
        _executemany(conn, "paper", ["id", *columns], [(pid, *p) for pid, p in zip(ids, params, strict=True)])
        return ids
    stmt = insert(paper_table).returning(paper_table.c.id, sort_by_parameter_order=True)
    return [int(row.id) for row in conn.execute(stmt, rows)]


def update_papers(
    conn: Connection, papers: list[tuple[Any, str]], fields: tuple[str, ...] = WRITTEN_PAPER_COLUMNS
) -> None:
    """Write back `fields` of existing papers (with their title keys), one executemany."""
    if not papers:
        return
    rows = [_paper_row(paper, key, fields) for paper, key in papers]
    if _fast(conn):
        columns, params = _sqlite_params(rows, fields)
        sets = ", ".join(f"{name} = ?" for name in columns)
        conn.exec_driver_sql(
            f"UPDATE paper SET {sets} WHERE id = ?",
            [(*p, paper.id) for p, (paper, _) in zip(params, papers, strict=True)],
        )
        return
    stmt = (
        update(paper_table)
        .where(paper_table.c.id == bindparam("pid"))
        .values({name: bindparam(f"v_{name}") for name in fields})
    )
    pairs = zip(rows, papers, strict=True)
    conn.execute(stmt, [{"pid": paper.id, **{f"v_{k}": row[k] for k in fields}} for row, (paper, _) in pairs])


def insert_sightings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if _fast(conn):
        _executemany(conn, "sighting", _SIGHTING_COLUMNS, [tuple(row[c] for c in _SIGHTING_COLUMNS) for row in rows])
        return
    conn.execute(insert(sighting_table), rows)


def top_papers(conn: Connection, limit: int | None, since: dt.date | None = None) -> list[Paper]:
    """Best first: upvotes (unknown last), then the newest first-seen, then title."""
    stmt = select(*_PAPER_COLUMNS)
    if since is not None:
        stmt = stmt.where(paper_table.c.first_seen >= since)
    stmt = stmt.order_by(
        paper_table.c.upvotes.is_(None),
        paper_table.c.upvotes.desc(),
        paper_table.c.first_seen.desc(),
        paper_table.c.title,
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_paper(row) for row in conn.execute(stmt)]


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
