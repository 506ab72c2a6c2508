"""Exactly-once digests: enqueue what is due into the outbox, then deliver and mark.

    for subscriber in settings.subscribers:
        period = latest fire of its cron at or before now
        if no outbox row (subscriber, period):          # unique pair: a second run adds nothing
            digest = build(window since the last outbox period)
            insert row(pending, rendered message, stable Message-ID)   # or `empty`
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
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from paperdigest import clock, digest, render
from paperdigest.config import Settings, SubscriberSettings
from paperdigest.mail.message import build_message, message_id, split_from
from paperdigest.mail.transport import DeliveryError, Transport
from paperdigest.model import Paper
from paperdigest.paths import state_dir
from paperdigest.score import HitCache
from paperdigest.service.schedule import cron_trigger, latest_fire
from paperdigest.store import queries

log = logging.getLogger("paperdigest.mail")

BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_MAX = dt.timedelta(hours=6)
MAX_ATTEMPTS = 12
CLAIM_LEASE = dt.timedelta(minutes=15)
RECORD_RETRIES = 5


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:")
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if ")" in stat else ""


def claim_token() -> str:
    """Who is sending: host, boot, pid namespace, pid and its start time, so that a later run on
    the same machine can tell a dead sender's claims from a live one's."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    pid = os.getpid()
    return f"{socket.gethostname()}|{boot}|{_pid_namespace()}|{pid}|{_start_time(pid)}"


def _claim_is_dead(token: str | None) -> bool:
    """A claim made on this machine by a process that no longer runs. Anything we cannot judge
    (another host, another pid namespace) is left to the claim's lease."""
    if not token:
        return True
    parts = token.split("|")
    if len(parts) != 5 or not parts[3].isdigit():
        return False
    host, boot, namespace, pid_text, started = parts
    if host != socket.gethostname():
        return False
    if boot and boot != _read("/proc/sys/kernel/random/boot_id"):
        return True  # the machine restarted since: that process is gone
    if namespace != _pid_namespace():
        return False
    pid = int(pid_text)
    if pid == os.getpid() and started == _start_time(pid):
        return False
    return _start_time(pid) != started  # no such process now, or the pid was reused


def backoff(attempts: int) -> dt.timedelta:
    """1 min, 2, 4, ... capped at 6 h."""
    delay: dt.timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


@dataclass(frozen=True, slots=True)
class Planned:
    subscriber: str
    period: dt.datetime
    papers: int
    subject: str
    status: str  # pending | empty


@dataclass(frozen=True, slots=True)
class Delivery:
    subscriber: str
    period: dt.datetime
    outcome: str  # sent | retry | failed
    detail: str


def safe_name(email: str) -> str:
    """An address as a file name: letters, digits and @._- kept, anything else '_'."""
    return "".join(ch if ch.isalnum() or ch in "@._-" else "_" for ch in email)


def file_name(subscriber: str, period: dt.datetime) -> str:
    return f"{period.astimezone(dt.UTC):%Y-%m-%dT%H%MZ}_{safe_name(subscriber.lower())}"


def outbox_folder(settings: Settings) -> Path:
    """Where the file transport writes: mail.outbox_dir, else the state directory's outbox/."""
    return settings.mail.outbox_dir or state_dir() / "outbox"


def written_files(settings: Settings, delivery: Delivery) -> tuple[Path, Path] | None:
    """Where the file transport wrote a delivered digest: its .eml and its HTML preview."""
    if settings.mail.transport != "file" or delivery.outcome != "sent":
        return None
    base = outbox_folder(settings) / file_name(delivery.subscriber, delivery.period)
    return base.with_name(base.name + ".eml"), base.with_name(base.name + ".html")


def current_period(subscriber: SubscriberSettings, now: dt.datetime) -> dt.datetime | None:
    """The cron fire the subscriber's digest is due for now (None: the cron never fired yet)."""
    fire = latest_fire(cron_trigger(subscriber.cron, subscriber.timezone), now)
    return fire.astimezone(dt.UTC) if fire is not None else None


def _outbox_values(
    settings: Settings,
    subscriber: SubscriberSettings,
    built: digest.Digest,
    period: dt.datetime,
    now: dt.datetime,
    env: jinja2.Environment,
) -> tuple[dict[str, Any], bytes]:
    """The outbox row of a digest and its rendered message."""
    text, html = render.render_both(
        built, env, text=subscriber.format in ("text", "both"), html=subscriber.format in ("html", "both")
    )
    subject = render.subject(built)
    msg_id = message_id(subscriber.email, period, settings.mail.from_)
    message = build_message(
        from_header=settings.mail.from_,
        to_email=subscriber.email,
        to_name=subscriber.name,
        subject=subject,
        text=text,
        html=html,
        msg_id=msg_id,
        date=now,
    )
    empty = built.empty and not settings.digest.send_empty
    row = {
        "subscriber": subscriber.email.lower(),
        "period": period,
        "window_start": built.window_start,
        "window_end": built.window_end,
        "created_at": now,
        "status": "empty" if empty else "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "message_id": msg_id,
        "subject": subject,
        "papers": json.dumps({str(s.paper.id): s.paper.upvotes for s in built.papers}),
    }
    return row, message


def enqueue_due(engine: Engine, settings: Settings, now: dt.datetime, dry_run: bool = False) -> list[Planned]:
    """Build and store every digest that is due and not yet in the outbox (first recording the papers
    of digests a stopped sender left accepted, so that the new digests know them as sent)."""
    if not dry_run:
        record_accepted(engine, now)
    _wait_for_ingests_before(engine)
    planned = []
    env = render.environment(settings.digest.templates)
    windows: dict[tuple[dt.datetime, dt.datetime], list[Paper]] = {}  # subscribers on one cron share it
    hits = HitCache()  # and score the same papers against the same topics
    for subscriber in settings.subscribers:
        period = current_period(subscriber, now)
        if period is None:
            continue
        with engine.connect() as conn:
            if queries.outbox_exists(conn, subscriber.email, period):
                continue
        built = digest.build(engine, settings, subscriber, now, window_cache=windows, hit_cache=hits)
        values, message = _outbox_values(settings, subscriber, built, period, now, env)
        item = Planned(subscriber.email, period, len(built.papers), values["subject"], values["status"])
        if dry_run:
            planned.append(item)
            continue
        try:
            with engine.connect().execution_options(write=True) as conn, conn.begin():
                queries.insert_outbox(conn, values, message)
        except IntegrityError:
            continue  # another sender stored this period first
        planned.append(item)
    return planned


def _wait_for_ingests_before(engine: Engine) -> None:
    """Let every ingest stamped at or before `now` commit before a window ending at `now` is read.

    An ingest stamps its papers after it takes SQLite's write lock, so taking and releasing
    that lock once (after `now` was read) is a barrier: ingests stamped earlier are committed,
    later ones are stamped after `now` and belong to the next window. (A server database has
    no such lock; see the README's notes on PostgreSQL.)
    """
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            pass


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
            and ((clock.as_utc(row.claimed_at) or now) <= now - CLAIM_LEASE or _claim_is_dead(row.claimed_by))
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
    with transport, engine.connect().execution_options(write=True) as conn:
        for row in rows:
            if stop is not None and stop():
                break
            with conn.begin():
                if not queries.claim_outbox(conn, row.id, row.status, row.claimed_by, token, clock.now()):
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
            time.sleep(1 + attempt)
    return False


def record_accepted(engine: Engine, now: dt.datetime) -> int:
    """Record the papers of digests the server took whose sender stopped before recording them
    (its claim dead, or older than CLAIM_LEASE). Nothing is sent again. Returns how many."""
    with engine.connect() as conn:
        rows = [
            row
            for row in queries.outbox_accepted(conn)
            if (clock.as_utc(row.claimed_at) or now) <= now - CLAIM_LEASE or _claim_is_dead(row.claimed_by)
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


def transport_for(settings: Settings) -> Transport:
    """The configured transport: .eml files in outbox_dir, or SMTP."""
    from paperdigest.config import smtp_password
    from paperdigest.mail.files import FileTransport
    from paperdigest.mail.smtp import SmtpOptions, SmtpTransport

    mail = settings.mail
    if mail.transport == "file":
        return FileTransport(outbox_folder(settings))
    options = SmtpOptions(
        host=mail.host,
        port=mail.port,
        security=mail.security,
        username=mail.username,
        password=smtp_password(mail),
        timeout=mail.timeout,
        ca_file=mail.ca_file,
    )
    return SmtpTransport(options)
