"""Bulk reads and writes. Every function takes an open connection; the caller owns the transaction."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Row, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from paperdigest import clock
from paperdigest.model import PAPER_FIELDS, Paper, paper_from
from paperdigest.store.tables import (
    dump_table,
    outbox_message_table,
    outbox_table,
    paper_table,
    rejection_table,
    sent_paper_table,
    sighting_table,
    source_state_table,
)

CHUNK = 500  # stays under every backend's limit of bound parameters

# The paper columns, from the model: Paper's fields (in its order), then the identity key.
# An ingest writes all but the id and the first-ingest bookkeeping.
_PAPER_READ = (*PAPER_FIELDS, "title_key")
WRITTEN_PAPER_COLUMNS = tuple(name for name in _PAPER_READ if name != "id")


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


FAST_SQLITE = True  # the tests turn it off to run the portable path (PostgreSQL's) on SQLite


def _fast(conn: Connection) -> bool:
    """Whether to take the plain-SQL path: SQLite only, where the hot statements skip Core."""
    return FAST_SQLITE and conn.dialect.name == "sqlite"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


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


def _paper_from_tuple(raw: Any) -> Paper:
    """A row of `SELECT _SELECT_LIST` as SQLite's driver returns it (dates as text)."""
    values = list(raw[:_KEY_AT])
    for at in _DATE_AT:
        if isinstance(values[at], str):
            values[at] = dt.date.fromisoformat(values[at])
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


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite types store: ISO dates, 'YYYY-MM-DD HH:MM:SS.ffffff' datetimes (UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _executemany(conn: Connection, table: str, columns: Sequence[str], params: list[tuple[Any, ...]]) -> None:
    """A plain driver INSERT executemany (SQLite's hot path: no per-row statement processing)."""
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(columns)})", params)


def _insert_one(conn: Connection, table: str, values: dict[str, Any]) -> int:
    """One row by plain SQL, dates stored as SQLAlchemy would; its new id."""
    columns, params = _sqlite_params([values], list(values))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(columns)})"
    return int(conn.exec_driver_sql(sql, params[0]).lastrowid)


def _sqlite_params(rows: list[dict[str, Any]], columns: Sequence[str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Rows as parameter tuples, dates and datetimes stored as SQLAlchemy would. Returns the
    column order of the tuples: plain columns first, then the temporal ones."""
    plain = [c for c in columns if c not in _TEMPORAL]
    temporal = [c for c in columns if c in _TEMPORAL]
    seen: dict[Any, Any] = {}  # a dump repeats its dates and its timestamp: convert each once

    def stored(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = _sqlite_value(value)
            return converted

    params = [(*[row[c] for c in plain], *[stored(row[c]) for c in temporal]) for row in rows]
    return [*plain, *temporal], params


# Columns holding dates or datetimes, in any table: the plain-SQL paths store them as
# SQLAlchemy's SQLite types would (see _sqlite_value).
_TEMPORAL = frozenset(
    column.name
    for table in (dump_table, paper_table, sighting_table, sent_paper_table, outbox_table, source_state_table)
    for column in table.columns
    if isinstance(column.type, Date | DateTime)
)
_NEW_PAPER_COLUMNS = (*WRITTEN_PAPER_COLUMNS, "first_dump_id", "first_ingested_at", "first_backfill")
_SIGHTING_COLUMNS = ("dump_id", "paper_id", "position", "upvotes")


def _paper_row(paper: Paper, key: str, columns: Sequence[str]) -> dict[str, Any]:
    """The stored values of a paper: its fields and its title key."""
    return {name: key if name == "title_key" else getattr(paper, name) for name in columns}


def insert_papers(conn: Connection, papers: list[tuple[Paper, str]], first: dict[str, Any]) -> list[int]:
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
    conn: Connection, papers: list[tuple[Paper, str]], fields: tuple[str, ...] = WRITTEN_PAPER_COLUMNS
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


def last_dumps(conn: Connection, limit: int) -> list[Row[Any]]:
    stmt = select(dump_table).order_by(dump_table.c.ingested_at.desc(), dump_table.c.id.desc()).limit(limit)
    return list(conn.execute(stmt))


def papers_ingested_between(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[Paper]:
    """Papers a non-backfill ingest brought in during (start, end]: the digest window."""
    stmt = select(*_PAPER_COLUMNS).where(
        paper_table.c.first_ingested_at > start,
        paper_table.c.first_ingested_at <= end,
        paper_table.c.first_backfill.is_(False),
    )
    return [_paper(row) for row in conn.execute(stmt)]


def papers_first_seen_since(conn: Connection, since: dt.date) -> list[Paper]:
    stmt = select(*_PAPER_COLUMNS).where(paper_table.c.first_seen >= since)
    return [_paper(row) for row in conn.execute(stmt)]


def all_papers(conn: Connection) -> list[Paper]:
    return [_paper(row) for row in conn.execute(select(*_PAPER_COLUMNS))]


def sent_among(conn: Connection, subscriber: str, ids: Iterable[int]) -> dict[int, int | None]:
    """Of these papers, the ones already sent to the subscriber, with their upvotes then."""
    c = sent_paper_table.c
    key = subscriber.lower()
    found: dict[int, int | None] = {}
    for chunk in _chunks(sorted(set(ids))):
        if _fast(conn):  # once per digest: plain SQL
            sql = f"SELECT paper_id, upvotes FROM sent_paper WHERE subscriber = ? AND paper_id IN ({_marks(chunk)})"
            found.update(conn.exec_driver_sql(sql, (key, *chunk)).fetchall())
            continue
        stmt = select(c.paper_id, c.upvotes).where(c.subscriber == key, c.paper_id.in_(chunk))
        found.update((row.paper_id, row.upvotes) for row in conn.execute(stmt))
    return found


def sent_and_gained(conn: Connection, subscriber: str, min_gain: int) -> list[tuple[Paper, int]]:
    """Papers sent to the subscriber that have gained at least `min_gain` upvotes since, with
    their upvotes then: the only ones that can be Rising, so the rest of a subscriber's history
    (it grows by every digest) is never read."""
    if _fast(conn):  # once per digest: plain SQL
        columns = ", ".join(f"p.{name}" for name in _PAPER_READ)
        sql = (
            f"SELECT {columns}, s.upvotes FROM sent_paper s JOIN paper p ON p.id = s.paper_id"
            " WHERE s.subscriber = ? AND s.upvotes IS NOT NULL AND p.upvotes - s.upvotes >= ? ORDER BY p.id"
        )
        found = conn.exec_driver_sql(sql, (subscriber.lower(), min_gain)).fetchall()
        return [(_paper_from_tuple(raw), int(raw[-1])) for raw in found]
    s = sent_paper_table.c
    stmt = (
        select(*_PAPER_COLUMNS, s.upvotes.label("upvotes_then"))
        .join_from(sent_paper_table, paper_table, paper_table.c.id == s.paper_id)
        .where(
            s.subscriber == subscriber.lower(),
            s.upvotes.is_not(None),
            paper_table.c.upvotes - s.upvotes >= min_gain,
        )
        .order_by(paper_table.c.id)
    )
    rows: list[Any] = list(conn.execute(stmt))
    return [(_paper(row), int(row.upvotes_then)) for row in rows]


def record_sent_upvotes(
    conn: Connection, subscriber: str, upvotes: dict[int, int | None], sent_at: dt.datetime
) -> None:
    """Record papers as sent to a subscriber, with the upvotes they showed; ones already there stay."""
    if not upvotes:
        return
    c = sent_paper_table.c
    key = subscriber.lower()
    if _fast(conn):  # once per delivered digest: one statement, no Core round
        stamp = _sqlite_value(sent_at)
        conn.exec_driver_sql(
            "INSERT INTO sent_paper (subscriber, paper_id, upvotes, sent_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (subscriber, paper_id) DO NOTHING",
            [(key, pid, votes, stamp) for pid, votes in upvotes.items()],
        )
        return
    existing = {
        row.paper_id
        for chunk in _chunks(sorted(upvotes))
        for row in conn.execute(select(c.paper_id).where(c.subscriber == key, c.paper_id.in_(chunk)))
    }
    rows = [
        {"subscriber": key, "paper_id": pid, "upvotes": votes, "sent_at": sent_at}
        for pid, votes in upvotes.items()
        if pid not in existing
    ]
    if rows:
        conn.execute(insert(sent_paper_table), rows)


def last_window_end(conn: Connection, subscriber: str) -> dt.datetime | None:
    """Where the window of the subscriber's latest digest ended (sent, pending, failed or empty)."""
    if _fast(conn):
        sql = "SELECT max(window_end) FROM outbox WHERE subscriber = ?"
        found = conn.exec_driver_sql(sql, (subscriber.lower(),)).scalar_one_or_none()
        return clock.as_utc(dt.datetime.fromisoformat(found)) if found is not None else None
    stmt = select(func.max(outbox_table.c.window_end)).where(outbox_table.c.subscriber == subscriber.lower())
    return clock.as_utc(conn.execute(stmt).scalar_one_or_none())


def outbox_exists(conn: Connection, subscriber: str, period: dt.datetime) -> bool:
    if _fast(conn):
        sql = "SELECT 1 FROM outbox WHERE subscriber = ? AND period = ?"
        return conn.exec_driver_sql(sql, (subscriber.lower(), _sqlite_value(period))).first() is not None
    stmt = select(outbox_table.c.id).where(
        outbox_table.c.subscriber == subscriber.lower(), outbox_table.c.period == period
    )
    return conn.execute(stmt).first() is not None


def insert_outbox(conn: Connection, values: dict[str, Any], message: bytes) -> int:
    if _fast(conn):
        outbox_id = _insert_one(conn, "outbox", values)
        _insert_one(conn, "outbox_message", {"outbox_id": outbox_id, "message": message})
        return outbox_id
    outbox_id = int(conn.execute(insert(outbox_table).returning(outbox_table.c.id), values).scalar_one())
    conn.execute(insert(outbox_message_table), {"outbox_id": outbox_id, "message": message})
    return outbox_id


def outbox_message(conn: Connection, outbox_id: int) -> bytes:
    if _fast(conn):
        sql = "SELECT message FROM outbox_message WHERE outbox_id = ?"
        return bytes(conn.exec_driver_sql(sql, (outbox_id,)).scalar_one())
    stmt = select(outbox_message_table.c.message).where(outbox_message_table.c.outbox_id == outbox_id)
    return bytes(conn.execute(stmt).scalar_one())


def outbox_open(conn: Connection) -> list[Row[Any]]:
    """Rows not settled yet: pending ones, and ones claimed by some sender (oldest first)."""
    c = outbox_table.c
    stmt = (
        select(
            c.id, c.subscriber, c.period, c.status, c.attempts, c.claimed_by, c.claimed_at, c.next_attempt_at, c.papers
        )
        .where(c.status.in_(("pending", "sending")))
        .order_by(c.id)
    )
    return list(conn.execute(stmt))


def claim_outbox(
    conn: Connection, row_id: int, expected: str, previous_claim: str | None, token: str, now: dt.datetime
) -> bool:
    """Take a row for sending; False when someone else changed or took it first."""
    if _fast(conn):  # once per delivery: plain SQL (IS compares NULL too)
        result = conn.exec_driver_sql(
            "UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_at = ?"
            " WHERE id = ? AND status = ? AND claimed_by IS ?",
            (token, _sqlite_value(now), row_id, expected, previous_claim),
        )
        return result.rowcount == 1
    c = outbox_table.c
    same_claim = c.claimed_by.is_(None) if previous_claim is None else c.claimed_by == previous_claim
    result = conn.execute(
        update(outbox_table)
        .where(c.id == row_id, c.status == expected, same_claim)
        .values(status="sending", claimed_by=token, claimed_at=now)
    )
    return result.rowcount == 1


def finish_outbox(conn: Connection, row_id: int, token: str, values: dict[str, Any]) -> bool:
    if _fast(conn):
        names = list(values)
        if not set(names) <= set(outbox_table.c.keys()):  # column names are never caller text
            raise ValueError(f"not outbox columns: {sorted(set(names) - set(outbox_table.c.keys()))}")
        sets = ", ".join(f"{name} = ?" for name in names)
        result = conn.exec_driver_sql(
            f"UPDATE outbox SET {sets} WHERE id = ? AND status = 'sending' AND claimed_by = ?",
            (*(_sqlite_value(values[name]) for name in names), row_id, token),
        )
        return result.rowcount == 1
    c = outbox_table.c
    result = conn.execute(
        update(outbox_table).where(c.id == row_id, c.status == "sending", c.claimed_by == token).values(**values)
    )
    return result.rowcount == 1


_ACCEPTED_SQL = (
    "UPDATE outbox SET status = 'accepted', sent_at = ?, attempts = ?, last_error = NULL"
    " WHERE id = ? AND status = 'sending' AND claimed_by = ?"
)


def accepted_mark(conn: Connection, row_id: int, token: str, sent_at: dt.datetime, attempts: int) -> Callable[[], bool]:
    """The commit that records a claimed row as taken by the server, prepared before the message
    goes out so that nothing else runs between the server's 250 and that commit. Calling it runs
    one UPDATE and commits it; True when the row was still ours.

    The one function here that commits, so `conn` must not be inside a transaction. On SQLite's
    fast path the UPDATE is a single autocommitted statement on the driver's connection (SQLite
    makes one statement atomic by itself: no BEGIN or COMMIT round); on the portable path it is
    its own short transaction.
    """
    if conn.in_transaction():
        raise RuntimeError("accepted_mark commits on its own: call it outside a transaction")
    if _fast(conn):
        driver = conn.connection.driver_connection
        if driver is None:
            raise RuntimeError("accepted_mark: the connection is closed")
        cursor = driver.cursor()
        params = (_sqlite_value(sent_at), attempts, row_id, token)

        def mark_fast() -> bool:
            try:
                return bool(cursor.execute(_ACCEPTED_SQL, params).rowcount == 1)
            except sqlite3.Error as exc:  # as SQLAlchemy would have raised it (busy: OperationalError)
                raise DBAPIError.instance(_ACCEPTED_SQL, params, exc, sqlite3.Error) from None

        return mark_fast
    c = outbox_table.c
    stmt = (
        update(outbox_table)
        .where(c.id == row_id, c.status == "sending", c.claimed_by == token)
        .values(status="accepted", sent_at=sent_at, attempts=attempts, last_error=None)
    )

    def mark() -> bool:
        with conn.begin():
            return conn.execute(stmt).rowcount == 1

    return mark


def outbox_accepted(conn: Connection) -> list[Row[Any]]:
    """Rows the server took whose papers are not recorded yet (their sender is between its two
    commits, or died there)."""
    c = outbox_table.c
    stmt = (
        select(c.id, c.subscriber, c.papers, c.sent_at, c.claimed_by, c.claimed_at)
        .where(c.status == "accepted")
        .order_by(c.id)
    )
    return list(conn.execute(stmt))


def finish_accepted(
    conn: Connection, row_id: int, subscriber: str, upvotes: dict[int, int | None], sent_at: dt.datetime
) -> bool:
    """Mark an accepted row sent, release its claim and record its papers as sent to the subscriber,
    in the caller's transaction. False, and nothing written, when another run finished it first."""
    if _fast(conn):
        sql = "UPDATE outbox SET status = 'sent', claimed_by = NULL WHERE id = ? AND status = 'accepted'"
        done = conn.exec_driver_sql(sql, (row_id,)).rowcount == 1
    else:
        c = outbox_table.c
        stmt = update(outbox_table).where(c.id == row_id, c.status == "accepted").values(status="sent", claimed_by=None)
        done = conn.execute(stmt).rowcount == 1
    if done:
        record_sent_upvotes(conn, subscriber, upvotes, sent_at)
    return done


def outbox_summary(conn: Connection) -> dict[str, int]:
    c = outbox_table.c
    return {
        row.status: int(row.n) for row in conn.execute(select(c.status, func.count().label("n")).group_by(c.status))
    }


def outbox_attention(conn: Connection, limit: int = 20) -> list[Row[Any]]:
    """Digests not sent yet (failed, retrying, pending, being sent): the ones that need attention
    (failed, or with an error from a last attempt) first, each group newest first."""
    c = outbox_table.c
    needs_attention = case((or_(c.status == "failed", c.last_error.is_not(None)), 0), else_=1)
    stmt = (
        select(c.subscriber, c.period, c.status, c.attempts, c.last_error, c.next_attempt_at)
        .where(c.status.in_(("failed", "pending", "sending")))
        .order_by(needs_attention, c.period.desc(), c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))


def source_states(conn: Connection) -> dict[str, Row[Any]]:
    return {row.name: row for row in conn.execute(select(source_state_table))}


def source_state(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(source_state_table).where(source_state_table.c.name == name)).first()


def save_source_state(conn: Connection, name: str, values: dict[str, Any], exists: bool) -> None:
    """Update one source's state, or insert it the first time (the caller read it in this transaction)."""
    c = source_state_table.c
    if exists:
        conn.execute(update(source_state_table).where(c.name == name).values(**values))
    else:
        conn.execute(insert(source_state_table).values(name=name, **values))


def recent_failed_mail(conn: Connection, since: dt.datetime) -> int:
    """Digests that failed since `since`, counted from when they failed: their last attempt
    (`claimed_at`, set when a delivery starts), whatever their period."""
    c = outbox_table.c
    failed_at = func.coalesce(c.claimed_at, c.created_at)
    stmt = select(func.count()).select_from(outbox_table).where(c.status == "failed", failed_at >= since)
    return int(conn.execute(stmt).scalar_one())


def record_rejection(conn: Connection, values: dict[str, Any]) -> None:
    """Store a rejected dump; the same file (source, file_key) rejected again updates its row."""
    c = rejection_table.c
    where = (c.source == values["source"], c.file_key == values["file_key"])
    found = conn.execute(select(c.id).where(*where)).first()
    if found is None:
        conn.execute(insert(rejection_table).values(**values))
    else:
        conn.execute(update(rejection_table).where(c.id == found.id).values(**values, resolved_at=None))


def rejection_known(conn: Connection, source: str, file_key: str) -> bool:
    c = rejection_table.c
    return conn.execute(select(c.id).where(c.source == source, c.file_key == file_key)).first() is not None


def resolve_rejections(conn: Connection, source: str, as_of: dt.date, now: dt.datetime) -> None:
    """A good dump from `source` captured on `as_of` settles the rejections it is newer than."""
    c = rejection_table.c
    conn.execute(
        update(rejection_table)
        .where(c.source == source, c.resolved_at.is_(None), c.as_of < as_of, c.rejected_at <= now)
        .values(resolved_at=now)
    )


def open_rejections(conn: Connection, since: dt.datetime, limit: int = 20) -> list[Row[Any]]:
    """Rejections since `since` that no newer good dump has settled, newest first."""
    c = rejection_table.c
    stmt = (
        select(c.source, c.file, c.reason, c.rejected_at, c.as_of)
        .where(c.resolved_at.is_(None), c.rejected_at >= since)
        .order_by(c.rejected_at.desc(), c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))
