"""The raw statements: the few places where SQLAlchemy Core's own work measurably slows a hot
path, so the SQL goes to the driver as it is. Everything else is Core.

The bar: a statement is raw when its Core form costs at least a tenth of its path (the ingest of a
dump, the commit after the server's 250), measured statement by statement with the rest as it is
(benchmarks/raw_vs_core.py; the figures and the ones that stayed on Core are in
benchmarks/README.md, "Raw statements"). The comment above each statement gives its figures.

Each statement is plain SQL that SQLite and PostgreSQL both run, the same on both (the tests run
every one on both engines), written with `?` placeholders (`%s` for psycopg). Values go to the
driver as Core would send them, through each column's own bind processor (on SQLite, dates and
datetimes become the text SQLAlchemy's SQLite types store).

The ingest's writes and its read of known papers have a PostgreSQL form of their own: one
statement per dump whose values travel as one array per column (`= ANY(%s)`, `unnest(...)`), so
the statement's text is the same for every dump (psycopg prepares it once, and parses no
placeholder lists of thousands) and the server runs one statement where it ran one per row. On
PostgreSQL the round trips, not the rows, were the cost (benchmarks/README.md, "Ingest").
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Dialect, delete
from sqlalchemy.exc import DBAPIError

from paperdigest.store.tables import outbox_table, paper_table, paper_topic_table, sent_paper_table, sighting_table

_Processor = Callable[[Any], Any] | None


def _sql(conn: Connection, statement: str) -> str:
    """`statement` in the driver's placeholder style (qmark for sqlite3, format for psycopg)."""
    if conn.dialect.paramstyle == "qmark":
        return statement
    return statement.replace("?", "%s")


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _arrays(conn: Connection, columns: Sequence[Column[Any]], rows: Sequence[Sequence[Any]]) -> tuple[list[Any], ...]:
    """PostgreSQL: the rows' values bound (each column's bind processor), one list per column."""
    bound = _bound(rows, _binders(conn.dialect, columns))
    return tuple(list(values) for values in zip(*bound, strict=True)) if bound else tuple([] for _ in columns)


def _unnest(conn: Connection, columns: Sequence[Column[Any]]) -> str:
    """PostgreSQL: `unnest(%s::type[], ...)`, one array parameter per column, in the column's own type."""
    return "unnest(" + ", ".join(f"%s::{column.type.compile(dialect=conn.dialect)}[]" for column in columns) + ")"


def _binders(dialect: Dialect, columns: Sequence[Column[Any]]) -> list[_Processor]:
    return [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]


def _bound(rows: Sequence[Sequence[Any]], binders: list[_Processor]) -> list[tuple[Any, ...]]:
    """Rows of values as the driver takes them. A dump repeats its dates and its timestamp:
    each distinct value of a column is converted once."""
    active: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]]
    active = [(at, processor, {}) for at, processor in enumerate(binders) if processor is not None]
    if not active:
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        values = list(row)
        for at, processor, seen in active:
            value = values[at]
            try:
                values[at] = seen[value]
            except KeyError:
                values[at] = seen[value] = processor(value)
        out.append(tuple(values))
    return out


# --- papers_where: the stored papers a dump names ---------------------------------------------------
# By arXiv id, then by title key. Core's SELECT ... IN (expanding, its rows typed by SQLAlchemy)
# costs 0.3 ms more per dump (5%): kept raw with update_papers, below, because together they are
# what brings the full ingest benchmark back under its target (benchmarks/README.md).


def papers_where(conn: Connection, columns: Sequence[str], where: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """`SELECT columns FROM paper WHERE where IN (values)`: each row as a tuple, its values as Core
    would type them (each column's own result processor: sqlite3 hands dates and lists back as
    text, psycopg lists as lists, which the model keeps as tuples)."""
    if _postgresql(conn):  # one array: the same text for every dump (see the module's docstring)
        sql = f"SELECT {', '.join(columns)} FROM paper WHERE {where} = ANY(%s::text[])"
        params: tuple[Any, ...] = (list(values),)
    else:
        sql = f"SELECT {', '.join(columns)} FROM paper WHERE {where} IN ({_marks(len(values))})"
        params = tuple(values)
    rows = conn.exec_driver_sql(sql, params).fetchall()
    processors = _result_processors(conn.dialect, tuple(columns))
    if not rows or not processors:
        return [tuple(row) for row in rows]
    # Column by column: the rows of a dump share their dates (first and last seen among a few
    # days) and most of their other processed values are None, so each distinct value of a
    # column is converted once and the column mapped through the answers in C (0.25 ms less a
    # dump of 100 known papers than a loop over each row's processed values).
    table = list(zip(*rows, strict=True))
    for at, processor in processors:
        column = table[at]
        try:
            answers = {value: processor(value) for value in set(column) if value is not None}
        except TypeError:  # unhashable (psycopg's lists)
            table[at] = tuple(None if value is None else processor(value) for value in column)
            continue
        answers[None] = None  # every processor's answer to it
        table[at] = tuple(map(answers.__getitem__, column))
    return list(zip(*table, strict=True))


@functools.cache
def _result_processors(dialect: Dialect, columns: tuple[str, ...]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """The paper columns' result processors (the ones that have one), by place: once per dialect."""
    return tuple(
        (at, processor)
        for at, name in enumerate(columns)
        if (processor := paper_table.c[name].type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    )


# --- insert_papers: the ingest's new papers ------------------------------------------------------
# PostgreSQL: one INSERT ... SELECT FROM unnest(...) RETURNING id and identity. SQLite: one
# executemany of a single-row INSERT with the ids given, the ones SQLite would choose itself
# (the table has no AUTOINCREMENT: a new row's rowid is the largest one plus one, row after row;
# the write transaction holds the store, so nothing else inserts between the read of the
# largest and the insert). The statement's text is then the same for every dump (prepared once
# by sqlite3's cache), where the multi-row INSERT ... RETURNING it replaces (faster than each
# Core form, benchmarks/README.md "Raw statements") had a text per number of new papers, parsed
# again for nearly every dump, and its ids to fetch and match back: 3.2 -> 2.7 s over the full
# benchmark's 2,000 dumps (200,000 new papers; in process, one core).


def insert_papers(conn: Connection, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """INSERT INTO paper (columns) the rows; the new rows' ids, in the rows' order. `columns`
    must hold title_key and arxiv_id (a row's identity, by which PostgreSQL's ids come back)."""
    known = [paper_table.c[name] for name in columns]  # never caller text
    if _postgresql(conn):  # one statement, whatever the count: values as arrays
        sql = (
            f"INSERT INTO paper ({', '.join(columns)}) SELECT * FROM {_unnest(conn, known)}"
            " RETURNING id, title_key, arxiv_id"
        )
        inserted = conn.exec_driver_sql(sql, _arrays(conn, known, rows))
        ids = {(key, arxiv_id): int(pid) for pid, key, arxiv_id in inserted}  # the identity is unique
        key_at, arxiv_at = columns.index("title_key"), columns.index("arxiv_id")
        return [ids[row[key_at], row[arxiv_at]] for row in rows]
    top = conn.exec_driver_sql("SELECT max(id) FROM paper").scalar() or 0
    if top + len(rows) >= _SQLITE_LAST_ROWID:  # SQLite would pick unused rowids at random: let it
        return _sqlite_insert_returning(conn, columns, rows)
    first = top + 1
    sql = f"INSERT INTO paper (id, {', '.join(columns)}) VALUES (?, {_marks(len(columns))})"
    bound = _bound(rows, _binders(conn.dialect, known))
    conn.exec_driver_sql(sql, [(pid, *row) for pid, row in enumerate(bound, first)])
    return list(range(first, first + len(rows)))


_SQLITE_LAST_ROWID = 2**63 - 1


def _sqlite_insert_returning(conn: Connection, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """SQLite, the rowids left to SQLite: one INSERT ... RETURNING a row (the rows' order kept)."""
    sql = f"INSERT INTO paper ({', '.join(columns)}) VALUES ({_marks(len(columns))}) RETURNING id"
    bound = _bound(rows, _binders(conn.dialect, [paper_table.c[name] for name in columns]))
    return [int(conn.exec_driver_sql(sql, row).scalar_one()) for row in bound]


# --- update_papers: the ingest's changed papers ----------------------------------------------------
# A plain executemany: Core's (a parameter set built and processed per row) costs 0.4 ms more per
# dump (7%); see papers_where for why it is kept.


def update_papers(conn: Connection, fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UPDATE paper SET fields WHERE id = ?, one executemany; each row is its values, then the id.
    On PostgreSQL one UPDATE ... FROM unnest(...) (each id at most once: one change per paper)."""
    known = [paper_table.c[name] for name in fields]  # never caller text
    if _postgresql(conn):
        sets = ", ".join(f"{name} = v.{name}" for name in fields)
        sql = (
            f"UPDATE paper SET {sets} FROM {_unnest(conn, [*known, paper_table.c.id])}"
            f" AS v({', '.join(fields)}, id) WHERE paper.id = v.id"
        )
        conn.exec_driver_sql(sql, _arrays(conn, [*known, paper_table.c.id], rows))
        return
    binders = [*_binders(conn.dialect, known), None]
    sets = ", ".join(f"{name} = ?" for name in fields)
    conn.exec_driver_sql(_sql(conn, f"UPDATE paper SET {sets} WHERE id = ?"), _bound(rows, binders))


# --- insert_sightings: a dump's sightings ---------------------------------------------------------
# On PostgreSQL one INSERT ... SELECT FROM unnest(...) does the dump's 200 at once (Core's
# executemany is one statement per row in a pipeline). On SQLite sqlite3's executemany of the
# tuples: Core's executemany (a dict per row, built and processed per row) cost 0.27 ms more a
# dump of 200 entries (1.45 -> 0.90 s over the full benchmark's 2,000 dumps, in process, one
# core). That is 3-4% of the path, under this module's bar of a tenth: kept because the backfill's
# CPU target (issue 13) is missed by about as much as such cuts add up to, and because the
# PostgreSQL form of the same function was raw already (benchmarks/README.md, third round).

_SIGHTING_COLUMNS = ("dump_id", "paper_id", "position", "upvotes")
_SQLITE_SIGHTINGS = f"INSERT INTO sighting ({', '.join(_SIGHTING_COLUMNS)}) VALUES (?, ?, ?, ?)"


def insert_sightings(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT INTO sighting (dump_id, paper_id, position, upvotes): each row a tuple in that
    order (integers, upvotes None when unknown: no bind processing), one statement."""
    if not rows:
        return
    if _postgresql(conn):
        known = [sighting_table.c[name] for name in _SIGHTING_COLUMNS]
        sql = f"INSERT INTO sighting ({', '.join(_SIGHTING_COLUMNS)}) SELECT * FROM {_unnest(conn, known)}"
        conn.exec_driver_sql(sql, _arrays(conn, known, rows))
        return
    conn.exec_driver_sql(_SQLITE_SIGHTINGS, list(rows))


# --- accepted_mark: the commit after the server's 250 --------------------------------------------
# Our part of the repeat window SMTP leaves (README, "Mail"). One autocommitted statement on the
# driver's connection: median 12-16 µs on SQLite against 95-103 µs for Core in a transaction
# (BEGIN IMMEDIATE, UPDATE, COMMIT); 94-210 µs on PostgreSQL against 288-520 µs (one round trip,
# not three).

_ACCEPTED = (
    "UPDATE outbox SET status = 'accepted', sent_at = ?, attempts = ?, last_error = NULL"
    " WHERE id = ? AND status = 'sending' AND claimed_by = ?"
)


def accepted_mark(
    conn: Connection, row_id: int, token: str, sent_at: dt.datetime, attempts: int
) -> Callable[[], bool]:
    """Prepare the UPDATE that marks a claimed outbox row accepted; calling the result runs it,
    autocommitted, and says whether the row was still ours. `conn` must be outside a transaction."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("accepted_mark: the connection is closed")
    (stamp,) = _bound([(sent_at,)], _binders(conn.dialect, [outbox_table.c.sent_at]))[0]
    params = (stamp, attempts, row_id, token)
    sql = _sql(conn, _ACCEPTED)
    cursor = driver.cursor()
    error = conn.dialect.loaded_dbapi.Error
    psycopg = conn.dialect.name == "postgresql"  # sqlite3: the engine keeps it out of transactions until BEGIN

    def mark() -> bool:
        if psycopg:
            driver.autocommit = True  # this one statement commits by itself
        try:
            return bool(cursor.execute(sql, params).rowcount == 1)
        except error as exc:  # as SQLAlchemy would raise it (a busy SQLite store: OperationalError)
            raise DBAPIError.instance(sql, params, exc, error) from None
        finally:
            if psycopg and not driver.closed:
                driver.autocommit = False

    return mark


# --- fill_outboxes: a batch of reservations turned into finished digests ---------------------------
# Each reservation's UPDATE keeps its "still ours" check (status `building`, claimed by the filler):
# the rows it changed are the reservations still ours. On SQLite one driver execute a row, its row
# count; on PostgreSQL one UPDATE ... FROM unnest(...) RETURNING for the batch (one round trip, not
# one a row). raw_vs_core.py --only-fill, per reservation of a batch of 50 with its 54 KB message:
# SQLite 49-51 µs CPU against Core's 189-197 (one UPDATE a row); PostgreSQL 57-64 against 87-129
# µs CPU, 237-266 against 299-364 µs wall.


def fill_outboxes(conn: Connection, me: str, items: Sequence[tuple[int, dict[str, Any]]]) -> list[bool]:
    """Set each (row id, values) reservation's columns (values' keys, every item the same ones),
    release its claim, where it is still `building` and claimed by `me`; for each, whether it was."""
    if not items:
        return []
    names = sorted(items[0][1])
    if any(sorted(values) != names for _, values in items):
        raise ValueError("fill_outboxes: every reservation is filled with the same columns")
    columns = [outbox_table.c[name] for name in names]  # column names are never caller text
    rows = [[values[name] for name in names] for _, values in items]
    if _postgresql(conn):
        keyed = [[row_id, *values] for (row_id, _), values in zip(items, rows, strict=True)]
        sets = ", ".join(f"{name} = v.{name}" for name in names)
        sql = (
            f"UPDATE outbox SET {sets}, claimed_by = NULL, claimed_at = NULL"
            f" FROM {_unnest(conn, [outbox_table.c.id, *columns])} AS v(row_id, {', '.join(names)})"
            " WHERE outbox.id = v.row_id AND outbox.status = 'building' AND outbox.claimed_by = %s"
            " RETURNING outbox.id"
        )
        arrays = _arrays(conn, [outbox_table.c.id, *columns], keyed)
        done = {int(row_id) for (row_id,) in conn.exec_driver_sql(sql, (*arrays, me))}
        return [row_id in done for row_id, _ in items]
    sets = ", ".join(f"{name} = ?" for name in names)
    sql = (
        f"UPDATE outbox SET {sets}, claimed_by = NULL, claimed_at = NULL"
        " WHERE id = ? AND status = 'building' AND claimed_by = ?"
    )
    driver = conn.connection.driver_connection
    if driver is None or not conn.in_transaction():
        raise RuntimeError("fill_outboxes: runs in the caller's transaction")  # the engine's BEGIN IMMEDIATE
    cursor = driver.cursor()
    error = conn.dialect.loaded_dbapi.Error
    kept = []
    for (row_id, _), bound in zip(items, _bound(rows, _binders(conn.dialect, columns)), strict=True):
        params = (*bound, row_id, me)
        try:
            kept.append(cursor.execute(sql, params).rowcount == 1)
        except error as exc:  # as SQLAlchemy would raise it (a busy or read-only store: OperationalError)
            raise DBAPIError.instance(sql, params, exc, error) from None
    return kept


# --- insert_sent_papers: the papers of a delivered batch ---------------------------------------------
# About 23 rows a digest, 1,150 a batch of 50. Core's executemany of that upsert is, on PostgreSQL,
# one statement a row (psycopg pipelines them, but the server still runs each): one INSERT ...
# SELECT FROM unnest(...) does the batch's at once. On SQLite sqlite3's executemany of tuples.
# raw_vs_core.py --only-fill, per digest of a batch of 50: SQLite 41 µs CPU against Core's 97;
# PostgreSQL 97 against 185 µs CPU, 254 against 456 µs wall.

_SENT_PAPER_COLUMNS = ("subscriber", "paper_id", "upvotes", "sent_at")
_SENT_PAPER_INSERT = f"INSERT INTO sent_paper ({', '.join(_SENT_PAPER_COLUMNS)}) "
_SENT_PAPER_CONFLICT = " ON CONFLICT (subscriber, paper_id) DO NOTHING"


def insert_sent_papers(conn: Connection, rows: Sequence[tuple[str, int, int | None, dt.datetime]]) -> None:
    """(subscriber, paper id, upvotes then, sent at) rows into sent_paper; a pair already there
    stays as it is (the upvotes it was first sent with)."""
    if not rows:
        return
    columns = [sent_paper_table.c[name] for name in _SENT_PAPER_COLUMNS]
    if _postgresql(conn):
        sql = _SENT_PAPER_INSERT + f"SELECT * FROM {_unnest(conn, columns)}" + _SENT_PAPER_CONFLICT
        conn.exec_driver_sql(sql, _arrays(conn, columns, rows))
    else:
        sql = _SENT_PAPER_INSERT + f"VALUES ({_marks(len(columns))})" + _SENT_PAPER_CONFLICT
        conn.exec_driver_sql(sql, _bound(rows, _binders(conn.dialect, columns)))


# --- the topic index (paper_topic) ------------------------------------------------------------------
# Its entries are inserted and re-keyed once per dump: on SQLite through sqlite3's executemany of
# tuples (0.23-0.26 ms against Core's 0.46-0.49 ms for 130 entries, in process on a file store),
# on PostgreSQL as one statement whose values are arrays (as the ingest's writes above).

ENTRY_COLUMNS = ("paper_id", "topic", "points", "neg_score", "neg_upvotes", "title")
_SQLITE_INSERT = f"INSERT INTO paper_topic ({', '.join(ENTRY_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
_PG_INSERT = (f"INSERT INTO paper_topic ({', '.join(ENTRY_COLUMNS)}) SELECT * FROM "
              "unnest(%s::bigint[], %s::varchar[], %s::float8[], %s::float8[], %s::int[], %s::text[])")
# New keys from the upvote points (computed by the caller) and the stored keyword points: the
# database adds the two doubles as Python does, so the key is the float score.py makes.
_PG_RESCORE = ("UPDATE paper_topic AS t SET neg_score = -(v.up + t.points), neg_upvotes = v.neg_upvotes "
               "FROM unnest(%s::float8[], %s::int[], %s::bigint[]) AS v(up, neg_upvotes, paper_id) "
               "WHERE t.paper_id = v.paper_id")
_SQLITE_RESCORE = "UPDATE paper_topic SET neg_score = -(? + points), neg_upvotes = ? WHERE paper_id = ?"


def insert_entries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """The entries, each a tuple in ENTRY_COLUMNS order. On SQLite straight to sqlite3's
    executemany, no dict per row: 0.23-0.26 ms against Core's 0.46-0.49 ms for 130 entries
    (a dump's worth and more), the dicts already built, in process on a file store."""
    _rows_or_arrays(conn, _PG_INSERT, _SQLITE_INSERT, rows)


def rescore_entries(conn: Connection, values: Sequence[tuple[float, int, int]]) -> None:
    """Each (upvote points, -upvotes, paper id): the paper's entries get the new key."""
    _rows_or_arrays(conn, _PG_RESCORE, _SQLITE_RESCORE, values)


def _rows_or_arrays(conn: Connection, postgresql: str, sqlite: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """One statement over the rows: on PostgreSQL with each column as an array (unnest), on
    SQLite as sqlite3's executemany of the tuples."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(postgresql, tuple(list(column) for column in zip(*rows, strict=True)))
    else:
        conn.exec_driver_sql(sqlite, list(rows))


# A rebuild's entries, staged in a temporary table of its connection while it reads the papers
# (memory stays flat whatever the store's size; on SQLite the temporary database is another file,
# so writing it takes no lock on the store), then copied into paper_topic under the ingests' lock.
STAGE = "paper_topic_rebuild"
_STAGE_COLUMNS = ("paper_id bigint, topic text, points double precision, neg_score double precision, "
                  "neg_upvotes integer, title text")
_RANK = next(index for index in paper_topic_table.indexes if index.name == "ix_paper_topic_rank")


_PG_STAGE = _PG_INSERT.replace("INTO paper_topic ", f"INTO {STAGE} ")
_SQLITE_STAGE = _SQLITE_INSERT.replace("INTO paper_topic ", f"INTO {STAGE} ")


def create_stage(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {STAGE} ({_STAGE_COLUMNS})")


def drop_stage(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")


def stage_entries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in ENTRY_COLUMNS' order into the stage: one statement (PostgreSQL), one executemany."""
    _rows_or_arrays(conn, _PG_STAGE, _SQLITE_STAGE, rows)


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
