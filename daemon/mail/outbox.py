"""The outbox: a queue of finished digests that stores them, claims them and delivers them
exactly once. (The digest job, digest/job.py, builds and composes what it holds.)

    add(row, message)                                  # unique (subscriber, period)
    for row in pending rows due now (and rows claimed by a sender that died):
        claim it (pending -> sending) and prepare the commit that will mark it accepted
        deliver; the moment the server answers 250, that one commit (sending -> accepted)
        then, in a second transaction, record its papers as sent to the subscriber (-> sent)
        transient failure -> pending again, retried with exponential backoff on later runs
        permanent failure (5xx for this recipient) -> failed, with the server's reply
    a row left `accepted` by a sender that died between its two commits: the next run
    records its papers (nothing is sent again)

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
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from paperdigest import clock, subscribers
from paperdigest.config import Settings
from paperdigest.mail.claims import claim_is_dead, claim_token
from paperdigest.mail.files import file_name
from paperdigest.mail.message import split_from
from paperdigest.mail.transport import DeliveryError, Transport
from paperdigest.store import queries

log = logging.getLogger("paperdigest.mail")

BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=6)
MAX_ATTEMPTS = 12
CLAIM_LEASE = dt.timedelta(minutes=15)
RECORD_RETRIES = 5


def backoff(attempts: int) -> dt.timedelta:
    """1 min, 2, 4, ... capped at 6 h."""
    delay: dt.timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


@dataclass(frozen=True, slots=True)
class Delivery:
    subscriber: str
    period: dt.datetime
    outcome: str  # sent | retry | failed
    detail: str


def holds(engine: Engine, subscriber: str, period: dt.datetime) -> bool:
    """Whether the outbox has the digest of this subscriber and period already."""
    with engine.connect() as conn:
        return queries.outbox_exists(conn, subscriber, period)


def add(engine: Engine, row: dict[str, Any], message: bytes) -> bool:
    """Queue a composed digest (its row and message); False when that (subscriber, period) is
    there already (another sender stored it first: the pair is unique)."""
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            queries.insert_outbox(conn, row, message)
    except IntegrityError:
        return False
    return True


def _due_rows(engine: Engine, now: dt.datetime) -> list[Any]:
    """Pending rows whose retry time has come, and rows whose sender is gone (dead, or its claim
    older than CLAIM_LEASE)."""
    with engine.connect() as conn:
        rows = queries.outbox_open(conn)
    return [
        row
        for row in rows
        if (row.status == "pending" and (clock.as_utc(row.next_attempt_at) or now) <= now)
        or (
            row.status == "sending"
            and ((clock.as_utc(row.claimed_at) or now) <= now - CLAIM_LEASE or claim_is_dead(row.claimed_by))
        )
    ]


def deliver_due(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    now: dt.datetime,
    stop: Callable[[], bool] | None = None,
) -> list[Delivery]:
    """Deliver every due outbox row over one transport session; stop early if the server is unusable
    or `stop()` says so (the message in flight is finished and recorded first).

    Each row is claimed just before it is sent, with the current time, so a claim is never older
    than one delivery (the SMTP timeout bounds that, far below CLAIM_LEASE). A claim lost in the
    meantime is logged and the row left to whoever took it. One connection serves the batch, and
    the commit that follows the server's 250 is prepared before sending: nothing else runs first.
    """
    token = claim_token()
    sender = split_from(settings.mail.from_)[1]
    results: list[Delivery] = []
    record_accepted(engine, now)
    rows = _due_rows(engine, now)
    if not rows:
        return results
    gone = subscribers.unsubscribed(engine)  # unsubscribed since their digest was queued
    with transport, engine.connect().execution_options(write=True) as conn:
        for row in rows:
            if stop is not None and stop():
                break
            with conn.begin():
                if not queries.claim_outbox(conn, row.id, row.status, row.claimed_by, token, clock.now()):
                    continue
                if row.subscriber in gone:
                    queries.finish_outbox(
                        conn, row.id, token, {"status": "cancelled", "last_error": "unsubscribed", "claimed_by": None}
                    )
                    continue
                message = queries.outbox_message(conn, row.id)
            mark_accepted = queries.accepted_mark(conn, row.id, token, now, row.attempts + 1)
            period = clock.as_utc(row.period) or now
            try:
                transport.send(
                    sender=sender, recipient=row.subscriber, message=message, name=file_name(row.subscriber, period)
                )
            except DeliveryError as exc:
                results.append(_record_failure(conn, row, token, exc, now, period))
                if exc.stop_batch:
                    break
                continue
            except Exception as exc:  # never leave a claim behind on a surprise
                failure = DeliveryError(f"unexpected {type(exc).__name__}: {exc}", permanent=False, stop_batch=True)
                results.append(_record_failure(conn, row, token, failure, now, period))
                log.exception("delivery to %s failed unexpectedly", row.subscriber)
                break
            # The server has the message: until this commit, a kill means it is sent again.
            try:
                accepted = mark_accepted()
            except OperationalError:
                accepted = _retry_busy(mark_accepted, row.subscriber)
            if not accepted:
                log.error(
                    "mail to %s was delivered but its claim was lost: another sender took the row", row.subscriber
                )
                results.append(Delivery(row.subscriber, period, "sent", "delivered; the claim was lost meanwhile"))
                continue
            shown = _shown(row.papers)
            _retry_busy(partial(_record_papers, conn, row.id, row.subscriber, shown, now), row.subscriber)
            results.append(Delivery(row.subscriber, period, "sent", f"{len(shown)} papers"))
    return results


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


def record_accepted(engine: Engine, now: dt.datetime) -> int:
    """Record the papers of digests the server took whose sender stopped before recording them
    (its claim dead, or older than CLAIM_LEASE). Nothing is sent again. Returns how many."""
    with engine.connect() as conn:
        rows = [
            row
            for row in queries.outbox_accepted(conn)
            if (clock.as_utc(row.claimed_at) or now) <= now - CLAIM_LEASE or claim_is_dead(row.claimed_by)
        ]
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
    attempts = row.attempts + 1
    if exc.permanent or attempts >= MAX_ATTEMPTS:
        reason = exc.reply if exc.permanent else f"gave up after {attempts} attempts: {exc.reply}"
        values: dict[str, Any] = {"status": "failed", "attempts": attempts, "last_error": reason, "claimed_by": None}
        outcome = Delivery(row.subscriber, period, "failed", reason)
        log.warning("mail to %s for %s failed: %s", row.subscriber, period.isoformat(), reason)
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
        log.warning("mail to %s for %s deferred: %s", row.subscriber, period.isoformat(), exc.reply)
    with conn.begin():
        queries.finish_outbox(conn, row.id, token, values)
    return outcome
