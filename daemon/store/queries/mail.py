"""The outbox and the papers sent to each subscriber."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Row,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from paperdigest import clock
from paperdigest.model import PAPER_FIELDS, Paper, paper_from
from paperdigest.store.queries import _raw
from paperdigest.store.queries._sql import _chunks, upsert
from paperdigest.store.queries.papers import _PAPER_COLUMNS, _paper
from paperdigest.store.tables import (
    outbox_message_table,
    outbox_table,
    paper_table,
    replica_table,
    sent_paper_table,
)

# The statements run once per digest or per delivery are built once, here: building a statement
# costs more than running it (70 of the 115 µs a small SELECT takes through Core on SQLite).
_s, _o, _p = sent_paper_table.c, outbox_table.c, paper_table.c
_SENT_AMONG = select(_s.paper_id, _s.upvotes).where(
    _s.subscriber == bindparam("subscriber"), _s.paper_id.in_(bindparam("ids", expanding=True))
)
_SENT_AND_GAINED = (
    select(*_PAPER_COLUMNS, _s.upvotes.label("upvotes_then"))
    .join_from(sent_paper_table, paper_table, _p.id == _s.paper_id)
    .where(
        _s.subscriber == bindparam("subscriber"),
        _s.upvotes.is_not(None),
        _p.upvotes - _s.upvotes >= bindparam("min_gain"),
    )
    .order_by(_p.id)
)
_LAST_WINDOW_END = select(func.max(_o.window_end)).where(_o.subscriber == bindparam("subscriber"))
_LAST_WINDOW = (  # a reservation (`building`) has no window yet
    select(_o.window_end, _o.window_end_dump)
    .where(_o.subscriber == bindparam("subscriber"), _o.status != "building")
    .order_by(_o.window_end.desc(), _o.id.desc())
    .limit(1)
)
_OUTBOX_EXISTS = select(_o.id).where(_o.subscriber == bindparam("subscriber"), _o.period == bindparam("period"))
_INSERT_OUTBOX = insert(outbox_table).returning(_o.id)
_INSERT_MESSAGE = insert(outbox_message_table)
_OUTBOX_MESSAGE = select(outbox_message_table.c.message).where(outbox_message_table.c.outbox_id == bindparam("id"))
def sent_among(conn: Connection, subscriber: str, ids: Iterable[int]) -> dict[int, int | None]:
    """Of these papers, the ones already sent to the subscriber, with their upvotes then."""
    found: dict[int, int | None] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = conn.execute(_SENT_AMONG, {"subscriber": subscriber.lower(), "ids": chunk})
        found.update((row.paper_id, row.upvotes) for row in rows)
    return found


def sent_and_gained(conn: Connection, subscriber: str, min_gain: int) -> list[tuple[Paper, int]]:
    """Papers sent to the subscriber that have gained at least `min_gain` upvotes since, with
    their upvotes then: the only ones that can be Rising, so the rest of a subscriber's history
    (it grows by every digest) is never read."""
    rows: list[Any] = list(conn.execute(_SENT_AND_GAINED, {"subscriber": subscriber.lower(), "min_gain": min_gain}))
    return [(_paper(row), int(row.upvotes_then)) for row in rows]


# The same reads for a batch of subscribers at once (a run builds its digests 50 at a time): one
# statement each per batch instead of one per digest, which on PostgreSQL is a round trip each.
_SENT_AMONG_MANY = select(_s.subscriber, _s.paper_id, _s.upvotes).where(
    _s.subscriber.in_(bindparam("subscribers", expanding=True)), _s.paper_id.in_(bindparam("ids", expanding=True))
)
_SENT_AND_GAINED_MANY = (
    select(_s.subscriber, *_PAPER_COLUMNS, _s.upvotes.label("upvotes_then"))
    .join_from(sent_paper_table, paper_table, _p.id == _s.paper_id)
    .where(
        _s.subscriber.in_(bindparam("subscribers", expanding=True)),
        _s.upvotes.is_not(None),
        _p.upvotes - _s.upvotes >= bindparam("min_gain"),
    )
    .order_by(_s.subscriber, _p.id)
)
_ranked_windows = (
    select(
        _o.subscriber,
        _o.window_end,
        _o.window_end_dump,
        func.row_number().over(partition_by=_o.subscriber, order_by=(_o.window_end.desc(), _o.id.desc())).label("n"),
    )
    .where(_o.subscriber.in_(bindparam("subscribers", expanding=True)), _o.status != "building")
    .subquery()
)
_w = _ranked_windows.c
_LAST_WINDOWS = select(_w.subscriber, _w.window_end, _w.window_end_dump).where(_w.n == 1)
SUBSCRIBER_CHUNK = 100  # subscribers per statement of the batched reads (with up to CHUNK paper ids)


def sent_among_many(
    conn: Connection, subscribers: Iterable[str], ids: Iterable[int]
) -> dict[str, dict[int, int | None]]:
    """sent_among for several subscribers (lower-cased keys; every one given has an entry)."""
    wanted = sorted({s.lower() for s in subscribers})
    found: dict[str, dict[int, int | None]] = {s: {} for s in wanted}
    papers = sorted(set(ids))
    for at in range(0, len(wanted), SUBSCRIBER_CHUNK):
        group = wanted[at : at + SUBSCRIBER_CHUNK]
        for chunk in _chunks(papers):
            for row in conn.execute(_SENT_AMONG_MANY, {"subscribers": group, "ids": chunk}):
                found[row.subscriber][row.paper_id] = row.upvotes
    return found


def sent_and_gained_many(
    conn: Connection, subscribers: Iterable[str], min_gain: int
) -> dict[str, list[tuple[Paper, int]]]:
    """sent_and_gained for several subscribers (lower-cased keys; every one given has an entry)."""
    wanted = sorted({s.lower() for s in subscribers})
    found: dict[str, list[tuple[Paper, int]]] = {s: [] for s in wanted}
    for at in range(0, len(wanted), SUBSCRIBER_CHUNK):
        params = {"subscribers": wanted[at : at + SUBSCRIBER_CHUNK], "min_gain": min_gain}
        for row in conn.execute(_SENT_AND_GAINED_MANY, params):
            found[row.subscriber].append((paper_from(row[1 : 1 + len(PAPER_FIELDS)]), int(row.upvotes_then)))
    return found


def last_windows(conn: Connection, subscribers: Iterable[str]) -> dict[str, tuple[dt.datetime, int | None]]:
    """last_window for several subscribers (lower-cased keys; those with no digest yet are left out)."""
    wanted = sorted({s.lower() for s in subscribers})
    found: dict[str, tuple[dt.datetime, int | None]] = {}
    for at in range(0, len(wanted), SUBSCRIBER_CHUNK):
        for row in conn.execute(_LAST_WINDOWS, {"subscribers": wanted[at : at + SUBSCRIBER_CHUNK]}):
            end = clock.as_utc(row.window_end)
            assert end is not None
            found[row.subscriber] = (end, row.window_end_dump)
    return found


def record_sent_upvotes(
    conn: Connection, subscriber: str, upvotes: dict[int, int | None], sent_at: dt.datetime
) -> None:
    """Record papers as sent to a subscriber, with the upvotes they showed; ones already there stay."""
    _raw.insert_sent_papers(conn, [(subscriber.lower(), pid, votes, sent_at) for pid, votes in upvotes.items()])


def last_window(conn: Connection, subscriber: str) -> tuple[dt.datetime, int | None] | None:
    """Where the window of the subscriber's latest digest (sent, pending, failed or empty) ended:
    its time, and its last dump (None for a row made before windows were kept in commit order)."""
    row = conn.execute(_LAST_WINDOW, {"subscriber": subscriber.lower()}).first()
    if row is None:
        return None
    end = clock.as_utc(row.window_end)
    assert end is not None
    return end, row.window_end_dump


def outbox_exists(conn: Connection, subscriber: str, period: dt.datetime) -> bool:
    return conn.execute(_OUTBOX_EXISTS, {"subscriber": subscriber.lower(), "period": period}).first() is not None


def insert_outbox(conn: Connection, values: dict[str, Any], message: bytes) -> int:
    outbox_id = int(conn.execute(_INSERT_OUTBOX, values).scalar_one())
    conn.execute(_INSERT_MESSAGE, {"outbox_id": outbox_id, "message": message})
    return outbox_id


def outbox_message(conn: Connection, outbox_id: int) -> bytes:
    return bytes(conn.execute(_OUTBOX_MESSAGE, {"id": outbox_id}).scalar_one())


def _held_by_the_living(since: Any) -> ColumnElement[bool]:
    """The row's claimer is a registered replica whose heartbeat is at or after `since`."""
    r = replica_table.c
    return exists().where(r.id == _o.claimed_by, r.last_seen >= since)


# Rows due for sending: pending ones whose time has come, and ones claimed by a process that is
# gone (its heartbeat older than the takeover time, or its replica row removed).
_DUE = or_(
    and_(_o.status == "pending", _o.next_attempt_at <= bindparam("now")),
    and_(_o.status == "sending", ~_held_by_the_living(bindparam("since"))),
)
_CLAIMABLE = (
    select(_o.id, _o.subscriber, _o.period, _o.status, _o.attempts, _o.papers, _o.claimed_by)
    .where(_DUE, _o.id > bindparam("after"))
    .order_by(_o.id)
    .limit(bindparam("limit"))
)
_TAKE = (
    update(outbox_table)
    .where(_o.id.in_(bindparam("ids", expanding=True)))
    .values(status="sending", claimed_by=bindparam("me"), claimed_at=bindparam("at"))
)
_MESSAGES = select(outbox_message_table.c.outbox_id, outbox_message_table.c.message).where(
    outbox_message_table.c.outbox_id.in_(bindparam("ids", expanding=True))
)


def claim_due(
    conn: Connection, me: str, now: dt.datetime, since: dt.datetime, limit: int, at: dt.datetime, after: int = 0
) -> list[Row[Any]]:
    """Claim up to `limit` due rows (with ids above `after`) for the replica `me` (status `sending`,
    claimed_by `me`), in the caller's write transaction; returns them as they were before the
    claim, oldest first.

    PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so two claimers never wait on, nor both take,
    one row (a row another transaction is claiming is skipped; once that commits the row is held
    by a live replica and no longer due). SQLite: the caller's transaction holds the write lock
    (BEGIN IMMEDIATE), which serialises claimers."""
    stmt = _CLAIMABLE
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=outbox_table)
    rows: list[Any] = list(conn.execute(stmt, {"now": now, "since": since, "limit": limit, "after": after}))
    if rows:
        conn.execute(_TAKE, {"ids": [row.id for row in rows], "me": me, "at": at})
    return rows


def outbox_messages(conn: Connection, ids: Iterable[int]) -> dict[int, bytes]:
    """The rendered messages of these outbox rows."""
    found: dict[int, bytes] = {}
    for chunk in _chunks(sorted(set(ids))):
        found.update((row.outbox_id, bytes(row.message)) for row in conn.execute(_MESSAGES, {"ids": chunk}))
    return found


def release_claims(conn: Connection, ids: Iterable[int], me: str) -> int:
    """Give back rows claimed by `me` and not sent (pending again, due now)."""
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    stmt = (
        update(outbox_table)
        .where(_o.id.in_(wanted), _o.status == "sending", _o.claimed_by == me)
        .values(status="pending", claimed_by=None)
    )
    return int(conn.execute(stmt).rowcount)


def outbox_held(conn: Connection, periods: Iterable[dt.datetime]) -> set[tuple[str, dt.datetime]]:
    """The (subscriber, period) pairs the outbox has a finished row for (any status but `building`:
    a reservation may be a dead builder's, which reserve_outbox takes over), among these periods."""
    wanted = sorted(set(periods))
    if not wanted:
        return set()
    stmt = select(_o.subscriber, _o.period).where(_o.period.in_(wanted), _o.status != "building")
    return {(row.subscriber, clock.as_utc(row.period)) for row in conn.execute(stmt)}  # type: ignore[misc]


def reserve_outbox(
    conn: Connection, rows: list[dict[str, Any]], me: str, since: dt.datetime
) -> dict[tuple[str, dt.datetime], int]:
    """Reserve (subscriber, period) rows for the replica `me` before their digests are built:
    status `building`, claimed by `me` (the other values are placeholders until `fill_outboxes`).
    A pair already there is taken only when it is `building` and its builder is gone. Returns the
    pairs reserved, with their row ids; the rest belong to someone else."""
    got: dict[tuple[str, dt.datetime], int] = {}
    by_subscriber = {values["subscriber"]: values for values in rows}
    rest = rows  # those whose INSERT has not run yet
    if rows and len(by_subscriber) == len(rows):
        # One INSERT for them all (SQLAlchemy's "insertmanyvalues": a statement of many VALUES);
        # it returns the rows it inserted, ours, named by subscriber (one period each here).
        inserted = conn.execute(
            _reserve_many(conn.dialect.name), [{**values, "status": "building", "claimed_by": me} for values in rows]
        )
        for row_id, subscriber in inserted:
            got[(subscriber, by_subscriber[subscriber]["period"])] = int(row_id)
        rest = []
    insert_new = _reserve(conn.dialect.name)
    for values in rows:
        key = (values["subscriber"], values["period"])
        if key in got:
            continue
        if rest:
            new = conn.execute(insert_new, {**values, "status": "building", "claimed_by": me}).scalar()
            if new is not None:
                got[key] = int(new)
                continue
        taken = conn.execute(
            update(outbox_table)
            .where(
                _o.subscriber == values["subscriber"],
                _o.period == values["period"],
                _o.status == "building",
                ~_held_by_the_living(since),
            )
            .values(claimed_by=me, claimed_at=values["claimed_at"])
            .returning(_o.id)
        ).scalar()
        if taken is not None:
            got[key] = int(taken)
    return got


def drop_dead_reservations(conn: Connection, since: dt.datetime) -> int:
    """Remove the `building` rows of builders that are gone (no message was stored for them): a
    period still due is reserved again; a past one's papers go out in the subscriber's next digest
    (its window starts where the last finished one ended)."""
    stmt = outbox_table.delete().where(_o.status == "building", ~_held_by_the_living(since))
    return int(conn.execute(stmt).rowcount)


@functools.cache
def _reserve(dialect: str) -> Executable:
    return (
        upsert(dialect, outbox_table).on_conflict_do_nothing(index_elements=["subscriber", "period"]).returning(_o.id)
    )


@functools.cache
def _reserve_many(dialect: str) -> Executable:
    return (
        upsert(dialect, outbox_table)
        .on_conflict_do_nothing(index_elements=["subscriber", "period"])
        .returning(_o.id, _o.subscriber)
    )


def fill_outboxes(conn: Connection, me: str, items: list[tuple[int, dict[str, Any], bytes]]) -> list[bool]:
    """Turn reservations of `me` (row id, values, message) into finished digests: each one's
    UPDATE keeps its own check that the reservation is still `me`'s (False, and nothing written
    for it, when it was taken over meanwhile), through the driver (_raw.py); then the messages of
    those that are, in one INSERT of many rows (executemany)."""
    kept = _raw.fill_outboxes(conn, me, [(row_id, values) for row_id, values, _ in items])
    messages = [
        {"outbox_id": row_id, "message": message} for (row_id, _, message), ok in zip(items, kept, strict=True) if ok
    ]
    if messages:
        conn.execute(_INSERT_MESSAGE, messages)
    return kept


def finish_outbox(conn: Connection, row_id: int, token: str, values: dict[str, Any]) -> bool:
    c = outbox_table.c
    result = conn.execute(
        update(outbox_table).where(c.id == row_id, c.status == "sending", c.claimed_by == token).values(**values)
    )
    return result.rowcount == 1


def accepted_mark(conn: Connection, row_id: int, token: str, sent_at: dt.datetime, attempts: int) -> Callable[[], bool]:
    """The commit that records a claimed row as taken by the server, prepared before the message
    goes out so that nothing else runs between the server's 250 and that commit. Calling it runs
    one UPDATE and commits it; True when the row was still ours.

    The one function here that commits, so `conn` must not be inside a transaction. The UPDATE is
    one autocommitted statement on the driver's connection (_raw.py: this commit is our part of
    the repeat window, and Core's BEGIN ... COMMIT around it would make it several times longer).
    """
    if conn.in_transaction():
        raise RuntimeError("accepted_mark commits on its own: call it outside a transaction")
    return _raw.accepted_mark(conn, row_id, token, sent_at, attempts)


_SENT_MANY = (
    update(outbox_table)
    .where(_o.id.in_(bindparam("row_ids", expanding=True)), _o.status == "accepted")
    .values(status="sent", claimed_by=None)
    .returning(_o.id)
)


def finish_accepted_many(
    conn: Connection, rows: list[tuple[int, str, dict[int, int | None]]], sent_at: dt.datetime
) -> set[int]:
    """finish_accepted for a batch of (row id, subscriber, papers shown), in the caller's
    transaction: one UPDATE ... RETURNING marks the rows sent (those another run finished first
    are left out, and nothing is written for them), one INSERT of many rows records the papers of
    those it returned. Returns their ids. Two statements a batch where finish_accepted is two a row."""
    done: set[int] = set()
    for chunk in _chunks([row_id for row_id, _, _ in rows]):
        done.update(int(row_id) for row_id in conn.execute(_SENT_MANY, {"row_ids": list(chunk)}).scalars())
    _raw.insert_sent_papers(
        conn,
        [
            (subscriber.lower(), pid, votes, sent_at)
            for row_id, subscriber, upvotes in rows
            if row_id in done
            for pid, votes in upvotes.items()
        ],
    )
    return done


def outbox_accepted(conn: Connection, since: dt.datetime) -> list[Row[Any]]:
    """Rows the server took whose papers are not recorded yet and whose sender is gone (it died
    between its two commits): no live replica whose heartbeat is at or after `since` holds them."""
    stmt = (
        select(_o.id, _o.subscriber, _o.papers, _o.sent_at)
        .where(_o.status == "accepted", ~_held_by_the_living(since))
        .order_by(_o.id)
    )
    return list(conn.execute(stmt))


def finish_accepted(
    conn: Connection, row_id: int, subscriber: str, upvotes: dict[int, int | None], sent_at: dt.datetime
) -> bool:
    """Mark an accepted row sent, release its claim and record its papers as sent to the subscriber,
    in the caller's transaction. False, and nothing written, when another run finished it first."""
    return row_id in finish_accepted_many(conn, [(row_id, subscriber, upvotes)], sent_at)
