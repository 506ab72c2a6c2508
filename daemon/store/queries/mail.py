"""The outbox and the papers sent to each subscriber."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Row, case, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from paperdigest import clock
from paperdigest.model import Paper
from paperdigest.store.queries._sql import (
    _chunks,
    _fast,
    _insert_one,
    _marks,
    _sqlite_value,
)
from paperdigest.store.queries.papers import (
    _PAPER_COLUMNS,
    _PAPER_READ,
    _paper,
    _paper_from_tuple,
)
from paperdigest.store.tables import (
    outbox_message_table,
    outbox_table,
    paper_table,
    sent_paper_table,
)


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


def last_window(conn: Connection, subscriber: str) -> tuple[dt.datetime, int | None] | None:
    """Where the window of the subscriber's latest digest (sent, pending, failed or empty) ended:
    its time, and its last dump (None for a row made before windows were kept in commit order)."""
    c = outbox_table.c
    stmt = (
        select(c.window_end, c.window_end_dump)
        .where(c.subscriber == subscriber.lower())
        .order_by(c.window_end.desc(), c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    if row is None:
        return None
    end = clock.as_utc(row.window_end)
    assert end is not None
    return end, row.window_end_dump


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


def recent_failed_mail(conn: Connection, since: dt.datetime) -> int:
    """Digests that failed since `since`, counted from when they failed: their last attempt
    (`claimed_at`, set when a delivery starts), whatever their period."""
    c = outbox_table.c
    failed_at = func.coalesce(c.claimed_at, c.created_at)
    stmt = select(func.count()).select_from(outbox_table).where(c.status == "failed", failed_at >= since)
    return int(conn.execute(stmt).scalar_one())
