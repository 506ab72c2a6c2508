"""The outbox: a queue of finished digests that stores, claims and delivers them exactly once.
(The digest job, digest/job.py, reserves each (subscriber, period) row, builds and composes
what it holds.)

    reserve(subscriber, period)                        # `building`, claimed by this process
    fill(row, message)                                 # -> pending (or empty)
    claim a batch of due rows: pending ones due now, and rows whose claimer is gone
        (pending -> sending, claimed_by = this process's replica id; FOR UPDATE SKIP LOCKED)
    for each: prepare the commit that will mark it accepted, deliver; the moment the server
        answers 250, that one commit (sending -> accepted)
        transient failure -> pending again, retried with exponential backoff on later runs
        permanent failure (5xx for this recipient) -> failed, with the server's reply
    after the batch, one transaction records the papers of its accepted rows (-> sent)
    a row left `accepted` by a sender that died between its two commits: the next run
    records its papers (nothing is sent again)

Who holds a claim: the claimer is a registered replica (service/leader.py: the daemon's own, or
a one-shot `send` registered as a `sender` for its duration), beating in the `replica` table.
A claim is held while its claimer's heartbeat is younger than `[daemon] takeover`; after that
(or once its row is gone) the claim is taken over. No guess from host names or pids. A sender
whose own heartbeat could not be recorded for two thirds of that time stops sending.

The one window SMTP leaves: the server has stored the message and the process dies before the
`accepted` commit. Part of it is the server's (from our last byte of DATA to its 250, and it
stores the message before answering) and cannot be closed from here; ours is that one commit,
with nothing before it. The row is still `sending`, so the next run sends the same bytes again,
with the same Message-ID, which receiving systems use to drop the repeat.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from paperdigest import clock, subscribers
from paperdigest.config import Settings
from paperdigest.mail.files import file_name
from paperdigest.mail.message import split_from
from paperdigest.mail.transport import DeliveryError, Transport
from paperdigest.service.leader import Replica, registered
from paperdigest.service.schedule import parse_every
from paperdigest.store import queries

log = logging.getLogger("paperdigest.mail")

BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=6)
MAX_ATTEMPTS = 12
RECORD_RETRIES = 5
CLAIM_BATCH = 50  # rows claimed in one transaction (and their papers recorded in one)


def backoff(attempts: int) -> dt.timedelta:
    """1 min, 2, 4, ... capped at 6 h."""
    delay: dt.timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


@dataclass(frozen=True, slots=True)
class Delivery:
    subscriber: str
    period: dt.datetime
    outcome: str  # sent | retry | failed | waiting (not tried: its batch stopped at a failure)
    detail: str


def held(engine: Engine, periods: list[dt.datetime]) -> set[tuple[str, dt.datetime]]:
    """The (subscriber, period) pairs the outbox has already, among these periods (one query)."""
    with engine.connect() as conn:
        return queries.outbox_held(conn, periods)


def reserve(
    engine: Engine, pairs: list[tuple[str, dt.datetime]], me: Replica, now: dt.datetime
) -> dict[tuple[str, dt.datetime], int]:
    """Reserve these (subscriber, period) rows for `me` before their digests are built, in one
    transaction: a row `building`, claimed by `me`, so that no other process renders them. A
    reservation whose builder is gone (heartbeat older than the takeover time) is taken over.
    Returns the pairs that are ours, with their row ids."""
    rows = [
        {
            "subscriber": subscriber.lower(),
            "period": period,
            "window_start": period,  # placeholders until fill(); last_window() skips `building`
            "window_end": period,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_at": clock.now(),
            "message_id": "",
            "subject": "",
            "papers": "{}",
        }
        for subscriber, period in pairs
    ]
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        since = clock.now() - me.takeover
        queries.drop_dead_reservations(conn, since)
        return queries.reserve_outbox(conn, rows, me.id, since)


def fill(engine: Engine, me: Replica, items: list[tuple[int, dict[str, Any], bytes]]) -> list[bool]:
    """Store finished digests in their reserved rows (row id, row values, message), in one
    transaction; False for a reservation taken over meanwhile (its builder was judged gone)."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        return queries.fill_outboxes(conn, me.id, items)


def takeover(settings: Settings) -> dt.timedelta:
    """How old a claimer's heartbeat may be before its claims are taken over."""
    return parse_every(settings.daemon.takeover)


def deliver_due(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now: dt.datetime,
    stop: Callable[[], bool] | None = None,
    replica: Replica | None = None,
) -> list[Delivery]:
    """Deliver every due outbox row over one transport session; stop early if the server is unusable
    or `stop()` says so (the message in flight is finished and recorded first).

    Rows are claimed CLAIM_BATCH at a time by `replica` (the daemon's; None: this process registers
    as a one-shot `sender` and beats while it sends). A claim lost in the meantime is logged and
    the row left to whoever took it. One connection serves the batch, and the commit that follows
    the server's 250 is prepared before sending: nothing else runs first.
    """
    with registered(engine, takeover(settings), replica) as me:
        return _deliver(engine, settings, transport, now, stop, me)


def _deliver(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now: dt.datetime,
    stop: Callable[[], bool] | None,
    me: Replica,
) -> list[Delivery]:
    sender = split_from(settings.mail.from_)[1]
    results: list[Delivery] = []
    record_accepted(engine, now, settings)
    gone = subscribers.unsubscribed(engine)  # unsubscribed since their digest was queued
    with engine.connect().execution_options(write=True) as conn:
        batch, messages = _claim(conn, me, now, 0)
        if not batch:
            return results
        with transport:
            while batch:
                accepted: list[Any] = []
                left = [row.id for row in batch]
                halted = False
                for row in batch:
                    if (stop is not None and stop()) or not me.holds_leases():
                        if not me.holds_leases():
                            log.error("this process's heartbeat is not being recorded: stopping the batch")
                        halted = True
                        break
                    left.remove(row.id)
                    delivery, stop_batch = _deliver_one(conn, transport, me.id, row, messages, gone, sender, now)
                    if delivery is not None:
                        results.append(delivery)
                    if delivery is not None and delivery.outcome == "sent" and delivery.detail != _LOST:
                        accepted.append(row)
                    if stop_batch:
                        halted = True
                        results += _not_tried(batch, left, row.subscriber, now)
                        break
                _record_batch(conn, accepted, now)
                if left:
                    with conn.begin():
                        queries.release_claims(conn, left, me.id)
                if halted:
                    break
                # On past this batch: a row handled here is never claimed twice in one run (one
                # whose claim was lost to a process since gone would be due again at once).
                batch, messages = _claim(conn, me, now, batch[-1].id)
    return results


_LOST = "delivered; the claim was lost meanwhile"


def _not_tried(batch: list[Any], left: list[int], failed: str, now: dt.datetime) -> list[Delivery]:
    """The rows of a batch left untried once a failure stopped it (the server unusable, or a
    surprise): each told, so that `send` names every digest still waiting, not only the one that
    met the failure."""
    return [
        Delivery(row.subscriber, clock.as_utc(row.period) or now, "waiting",
                 f"not tried: the batch stopped at {failed}'s failure; it goes at the next send")
        for row in batch
        if row.id in left
    ]


def _claim(conn: Connection, me: Replica, now: dt.datetime, after: int) -> tuple[list[Any], dict[int, bytes]]:
    """Claim the next batch of due rows after the row id `after`, with their messages (one transaction)."""
    since = clock.now() - me.takeover
    with conn.begin():
        rows = queries.claim_due(conn, me.id, now, since, CLAIM_BATCH, clock.now(), after)
        messages = queries.outbox_messages(conn, [row.id for row in rows])
    return rows, messages


def _deliver_one(
    conn: Connection,
    transport: Transport,
    token: str,
    row: Any,
    messages: dict[int, bytes],
    gone: set[str],
    sender: str,
    now: dt.datetime,
) -> tuple[Delivery | None, bool]:
    """Send one claimed row; returns its delivery (None: cancelled) and whether to stop the batch."""
    if row.subscriber in gone:
        with conn.begin():
            queries.finish_outbox(
                conn, row.id, token, {"status": "cancelled", "last_error": "unsubscribed", "claimed_by": None}
            )
        return None, False
    mark_accepted = queries.accepted_mark(conn, row.id, token, now, row.attempts + 1)
    period = clock.as_utc(row.period) or now
    try:
        transport.send(
            sender=sender, recipient=row.subscriber, message=messages[row.id], name=file_name(row.subscriber, period)
        )
    except DeliveryError as exc:
        return _record_failure(conn, row, token, exc, now, period), exc.stop_batch
    except Exception as exc:  # never leave a claim behind on a surprise
        failure = DeliveryError(f"unexpected {type(exc).__name__}: {exc}", permanent=False, stop_batch=True)
        log.exception("delivery to %s failed unexpectedly", row.subscriber)
        return _record_failure(conn, row, token, failure, now, period), True
    # The server has the message: until this commit, a kill means it is sent again.
    try:
        accepted = mark_accepted()
    except OperationalError:
        accepted = _retry_busy(mark_accepted, row.subscriber)
    if not accepted:
        log.error("mail to %s was delivered but its claim was lost: another sender took the row", row.subscriber)
        return Delivery(row.subscriber, period, "sent", _LOST), False
    return Delivery(row.subscriber, period, "sent", f"{len(_shown(row.papers))} papers"), False


def _record_batch(conn: Connection, accepted: list[Any], now: dt.datetime) -> None:
    """The second step after delivery, for a batch: its accepted rows become `sent` and their
    papers are recorded, in one transaction (a sender killed before it leaves them `accepted`,
    for the next run)."""
    if not accepted:
        return

    shown = [(row.id, row.subscriber, _shown(row.papers)) for row in accepted]

    def record() -> bool:
        with conn.begin():
            queries.finish_accepted_many(conn, shown, now)
        return True

    _retry_busy(record, accepted[0].subscriber)


def _shown(papers: str) -> dict[int, int | None]:
    """An outbox row's papers: paper id -> its upvotes as the digest showed them."""
    return {int(pid): votes for pid, votes in json.loads(papers).items()}


def _record_papers(
    conn: Connection, row_id: int, subscriber: str, shown: dict[int, int | None], sent_at: dt.datetime
) -> bool:
    """The second step after delivery: the row becomes `sent` and its papers are recorded."""
    with conn.begin():
        return queries.finish_accepted(conn, row_id, subscriber, shown, sent_at)


def _retry_busy(step: Callable[[], bool], subscriber: str) -> bool:
    """Run a bookkeeping step again while the store is busy (another writer held it past the busy
    timeout); the last failure is raised."""
    for attempt in range(RECORD_RETRIES):
        try:
            return step()
        except OperationalError:
            if attempt == RECORD_RETRIES - 1:
                raise
            log.warning("the store is busy; retrying to record the mail to %s", subscriber)
            clock.sleep(1 + attempt)
    return False


def record_accepted(engine: Engine, now: dt.datetime, settings: Settings) -> int:
    """Record the papers of digests the server took whose sender stopped before recording them
    (its heartbeat older than the takeover time, or gone). Nothing is sent again. Returns how many."""
    with engine.connect() as conn:
        rows = queries.outbox_accepted(conn, clock.now() - takeover(settings))
    done = 0
    if rows:
        with engine.connect().execution_options(write=True) as conn:
            for row in rows:
                sent_at = clock.as_utc(row.sent_at) or now
                if _record_papers(conn, row.id, row.subscriber, _shown(row.papers), sent_at):
                    log.info("recorded the papers of the digest to %s; its sender had stopped", row.subscriber)
                    done += 1
    return done


def _record_failure(
    conn: Connection, row: Any, token: str, exc: DeliveryError, now: dt.datetime, period: dt.datetime
) -> Delivery:
    """The row failed for good, or waits for its retry. Not logged here: every Delivery is told once
    by its caller (`send` prints it, the daemon logs it)."""
    attempts = row.attempts + 1
    if exc.permanent or attempts >= MAX_ATTEMPTS:
        reason = exc.reply if exc.permanent else f"gave up after {attempts} attempts: {exc.reply}"
        values: dict[str, Any] = {"status": "failed", "attempts": attempts, "last_error": reason, "claimed_by": None}
        outcome = Delivery(row.subscriber, period, "failed", reason)
    else:
        retry_at = now + backoff(attempts)
        values = {
            "status": "pending",
            "attempts": attempts,
            "last_error": exc.reply,
            "next_attempt_at": retry_at,
            "claimed_by": None,
        }
        outcome = Delivery(row.subscriber, period, "retry", f"{exc.reply}; next try {retry_at:%Y-%m-%d %H:%M}Z")
    with conn.begin():
        queries.finish_outbox(conn, row.id, token, values)
    return outcome
