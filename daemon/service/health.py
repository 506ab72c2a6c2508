"""Is the service well? Pure judgements of the stored state: sources, mail, the next runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from paperdigest import subscribers
from paperdigest.clock import as_utc, iso
from paperdigest.config import Settings, SourceSettings, sending_problems
from paperdigest.service.schedule import cron_trigger, parse_every
from paperdigest.store import status as store_status  # not queries/: status starts without SQLModel (issue 13)

DEFAULT_EVERY = dt.timedelta(hours=1)
URL_STALE_AFTER = dt.timedelta(days=2)
# A source fetched by day changes every weekday: a long weekend with a holiday is not stale.
DAILY_STALE_AFTER = dt.timedelta(days=4)
MAIL_LOOKBACK = dt.timedelta(days=7)
REJECTION_LOOKBACK = dt.timedelta(days=7)
MAIL_RETRIES_BEFORE_ALARM = 3


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    kind: str
    state: str  # ok | failing | stale | warning | never polled
    last_success: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    since_change: dt.timedelta | None
    next_poll: dt.datetime
    detail: str | None = None  # why it is in a warning

    @property
    def healthy(self) -> bool:
        return self.state in ("ok", "never polled")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "healthy": self.healthy,
            "last_success": iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "seconds_since_change": int(self.since_change.total_seconds()) if self.since_change else None,
            "next_poll": iso(self.next_poll),
            "detail": self.detail,
        }


def poll_interval(source: SourceSettings) -> dt.timedelta:
    return parse_every(source.every) if source.every else DEFAULT_EVERY


def next_poll(source: SourceSettings, last_poll: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if source.cron:
        fire = cron_trigger(source.cron).get_next_fire_time(None, now)
        return fire if fire is not None else now
    if last_poll is None:
        return now
    return max(last_poll + poll_interval(source), now)


def stale_after(source: SourceSettings) -> dt.timedelta | None:
    if source.stale_after:
        return parse_every(source.stale_after)
    return {"url": URL_STALE_AFTER, "huggingface": DAILY_STALE_AFTER}.get(source.kind)


def empty_is_expected(source: SourceSettings, day: dt.date) -> bool:
    """No papers are featured on weekends, nor on the source's `holidays`."""
    return day.weekday() >= 5 or source.is_holiday(day)


def empty_day(source: SourceSettings, day: dt.date, items: int | None, now: dt.datetime) -> str | None:
    """Why a day fetched by a huggingface source is a warning: it is today, a weekday that is no
    holiday, and its listing is still empty past `empty_after` (UTC). None when all is as expected
    (a weekend, a holiday, a day with papers, too early, or a day that is over)."""
    moment = now.astimezone(dt.UTC)
    if items != 0 or day != moment.date() or empty_is_expected(source, day):
        return None
    if moment.timetz() < source.empty_after_time:
        return None
    return (
        f"today ({day:%A} {day}) has no papers yet at {moment:%H:%M}Z, past empty_after "
        f"({source.empty_after_time:%H:%M} UTC): papers are featured every weekday"
    )


def source_health(source: SourceSettings, state: Any | None, now: dt.datetime) -> SourceHealth:
    """`state` is the stored row of the source (or None when it was never polled)."""
    get = (lambda name: getattr(state, name)) if state is not None else (lambda name: None)
    last_success, last_error_at = as_utc(get("last_success_at")), as_utc(get("last_error_at"))
    last_change = as_utc(get("last_change_at"))
    since_change = now - last_change if last_change else None
    limit = stale_after(source)
    empty = _empty_warning(source, state, now)
    if state is None:
        verdict = "never polled"
    elif last_error_at is not None and (last_success is None or last_error_at >= last_success):
        verdict = "failing"
    elif empty is not None:
        verdict = "warning"
    elif limit is not None and since_change is not None and since_change > limit:
        verdict = "stale"
    else:
        verdict = "ok"
    return SourceHealth(
        source.name,
        source.kind,
        verdict,
        last_success,
        get("last_error"),
        last_error_at,
        since_change,
        next_poll(source, as_utc(get("last_poll_at")), now),
        empty if verdict == "warning" else None,
    )


def _empty_warning(source: SourceSettings, state: Any | None, now: dt.datetime) -> str | None:
    """A listing of zero entries: for most sources the last poll's; for a huggingface source only
    an empty weekday past its hour (`empty_day`), read from the day after its last complete one
    (its newest day) and how many papers that day held."""
    if state is None:
        return None
    if source.kind != "huggingface":
        return "the last poll yielded zero entries" if state.last_entries == 0 else None
    if state.complete_through is None:
        return None
    return empty_day(source, state.complete_through + dt.timedelta(days=1), state.last_entries, now)


def next_digests(settings: Settings, now: dt.datetime) -> list[tuple[str, dt.datetime]]:
    result = []
    for subscriber in settings.subscribers:
        fire = cron_trigger(subscriber.cron, subscriber.timezone).get_next_fire_time(None, now)
        if fire is not None:
            result.append((subscriber.email, fire.astimezone(dt.UTC)))
    return sorted(result, key=lambda item: item[1])


def mail_healthy(failed_recently: int, attention: list[Any]) -> bool:
    retrying = [m for m in attention if m.status == "pending" and m.attempts >= MAIL_RETRIES_BEFORE_ALARM]
    return failed_recently == 0 and not retrying


OUTBOX_STATUSES = ("pending", "sending", "accepted", "sent", "failed", "empty", "cancelled")


def status_report(settings: Settings, engine: Engine, store: str, now: dt.datetime, last: int) -> dict[str, Any]:
    """What `status` shows (and `status --json` prints): counts, the last dumps, the sources,
    dumps rejected lately, the next runs and the mail. `healthy` is false when a source is
    failing, stale or empty, a dump was rejected in the last week and no newer good one from
    its source came after it, or mail is failing. Every time carries its offset."""
    with engine.connect() as conn:
        read = store_status.read(conn, store_status.reflect(conn), last, now - MAIL_LOOKBACK, now - REJECTION_LOOKBACK)
    counts, dumps, mail, attention = read.counts, read.last_dumps, read.mail, read.attention
    failed_recently, rejections, replicas = read.failed_since, read.rejections, read.replicas
    sources = [source_health(s, read.source_states.get(s.name), now) for s in settings.sources]
    settings = subscribers.effective_with(settings, read.subscribers)
    takeover = parse_every(settings.daemon.takeover)
    cannot_send = sending_problems(settings) if settings.subscribers else []
    mail_ok = mail_healthy(failed_recently, attention) and not cannot_send
    healthy = mail_ok and not rejections and all(s.healthy for s in sources)
    return {
        "healthy": healthy,
        "store": store,
        **counts,
        "last_dumps": [
            {
                "source": d.source,
                "as_of": d.as_of.isoformat(),
                "ingested_at": iso(d.ingested_at),
                "layout": d.layout,
                "backfill": d.backfill,
                "status": d.status,
                "entries": d.entries,
                "new": d.new,
                "updated": d.updated,
                "unchanged": d.unchanged,
            }
            for d in dumps
        ],
        "sources": [s.to_json() for s in sources],
        "rejected": [
            {
                "source": r.source,
                "file": r.file,
                "as_of": r.as_of.isoformat(),
                "rejected_at": iso(r.rejected_at),
                "reason": r.reason,
            }
            for r in rejections
        ],
        "replicas": [
            {
                "id": r.id,
                "host": r.host,
                "pid": r.pid,
                "role": r.role,
                "since": iso(r.started_at),
                "last_seen": iso(r.last_seen),
                "alive": (as_utc(r.last_seen) or now) >= now - takeover,
            }
            for r in replicas
        ],
        "next_runs": [
            *({"job": f"source:{s.name}", "at": iso(s.next_poll)} for s in sources),
            *({"job": f"digest:{email}", "at": iso(at)} for email, at in next_digests(settings, now)),
        ],
        "mail": {
            "healthy": mail_ok,
            "can_send": not cannot_send,
            "problems": cannot_send,
            "failed_last_7_days": failed_recently,
            "counts": {status: mail.get(status, 0) for status in OUTBOX_STATUSES},
            "attention": [
                {
                    "subscriber": m.subscriber,
                    "period": iso(m.period),
                    "status": m.status,
                    "attempts": m.attempts,
                    "last_error": m.last_error,
                    "next_attempt_at": iso(m.next_attempt_at),
                }
                for m in attention
            ],
        },
    }
