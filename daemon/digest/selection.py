"""What a subscriber gets: the window, the selection (pure) and the Digest passed to rendering.

period       = latest fire time of the subscriber's cron at or before now (its timezone)
window       = (end of the window of the subscriber's last digest, or the fire before `period`; now]
candidates   = papers a non-backfill ingest brought in during the window
digest       = rank(candidates - already sent - withdrawn), >= min_score, <= max_papers, by topic
more         = the next few of that ranking, cut by max_papers (their titles end the digest)
rising       = already-sent papers whose upvotes grew sharply since they were sent (not withdrawn)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from paperdigest.config import DigestSettings, Settings, SubscriberSettings
from paperdigest.digest.ranking import Rankings
from paperdigest.model import Paper
from paperdigest.score import HitCache, ScoredPaper, top
from paperdigest.service.schedule import cron_trigger, fire_before, latest_fire
from paperdigest.store import queries

RISING_LIMIT = 5
MORE_LIMIT = 5  # titles of the papers cut by max_papers shown at the end


@dataclass(frozen=True, slots=True)
class Section:
    topic: str | None
    papers: tuple[ScoredPaper, ...]


@dataclass(frozen=True, slots=True)
class Rising:
    paper: Paper
    upvotes_then: int
    upvotes_now: int


@dataclass(frozen=True, slots=True)
class Digest:
    subscriber: SubscriberSettings
    period: dt.datetime  # the cron fire this digest answers (names it: one digest per period)
    window_start: dt.datetime
    window_end: dt.datetime
    sections: tuple[Section, ...]
    rising: tuple[Rising, ...]
    candidates: int  # papers in the window, before topics and thresholds
    matched: int  # of those, papers matching a topic and min_score, before the cap
    dumps: tuple[int, int] = (0, 0)  # the window in commit order: dumps after the first, up to the second
    more: tuple[ScoredPaper, ...] = ()  # the first of the papers the cap left out, best first

    @property
    def papers(self) -> tuple[ScoredPaper, ...]:
        return tuple(p for section in self.sections for p in section.papers)

    @property
    def empty(self) -> bool:
        return not self.papers and not self.rising

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(s.topic for s in self.sections if s.topic)


@dataclass(frozen=True, slots=True)
class Window:
    """A digest's window: its period, the times it covers (shown to the reader), and the same
    span in commit order (`dumps`: the dumps after the first id, up to the second), which is
    what selects its papers: no ingest that commits late, or on a host whose clock is behind,
    falls between two windows."""

    period: dt.datetime
    start: dt.datetime
    end: dt.datetime
    dumps: tuple[int, int] = (0, 0)


def period_window(subscriber: SubscriberSettings, now: dt.datetime, last_end: dt.datetime | None) -> Window:
    """The subscriber's current period, and the window of ingests its digest covers.

    The window runs from where the last digest's window ended (the first digest: the cron's
    fire before the period) up to now, so no paper falls between two digests.
    """
    trigger = cron_trigger(subscriber.cron, subscriber.timezone)
    period = (latest_fire(trigger, now) or now).astimezone(dt.UTC)
    previous = fire_before(trigger, period) or period - dt.timedelta(days=1)
    start = last_end if last_end is not None and last_end < now else previous.astimezone(dt.UTC)
    return Window(period, start, now)


def is_rising(then: int | None, now: int | None, settings: DigestSettings) -> bool:
    """Sharply: at least `rising_factor` times the count when sent and `rising_min_gain` more."""
    if then is None or now is None:
        return False
    return now >= then * settings.rising_factor and now - then >= settings.rising_min_gain


def select(
    settings: Settings,
    subscriber: SubscriberSettings,
    window: Window,
    candidates: list[Paper],
    sent: dict[int, int | None],
    sent_papers_now: list[Paper],
    hit_cache: HitCache | None = None,
    rankings: Rankings | None = None,
) -> Digest:
    """The digest for one subscriber (pure): ranked, thresholded, capped, grouped by topic.
    `rankings` (a batch's, on the window's paper list keyed by window.dumps) ranks as top() does."""
    topics = {name: settings.topics[name] for name in subscriber.topics}
    limit = subscriber.max_papers
    if rankings is not None and topics:
        ranked, matched = rankings.top(window.dumps, candidates, sent, topics, subscriber.min_score, limit + MORE_LIMIT)
    else:
        fresh = [p for p in candidates if p.id not in sent and p.withdrawn_at is None]
        ranked, matched = top(fresh, topics, settings.scoring, hit_cache, subscriber.min_score, limit + MORE_LIMIT)
    chosen, more = ranked[:limit], ranked[limit:]
    order: list[str | None] = [*subscriber.topics] or [None]
    sections = tuple(
        Section(topic, tuple(s for s in chosen if s.topic == topic))
        for topic in order
        if any(s.topic == topic for s in chosen)
    )
    rising = sorted(
        (
            Rising(p, sent[p.id] or 0, p.upvotes or 0)
            for p in sent_papers_now
            if is_rising(sent.get(p.id), p.upvotes, settings.digest) and p.withdrawn_at is None
        ),
        key=lambda r: (-(r.upvotes_now - r.upvotes_then), r.paper.title),
    )
    return Digest(
        subscriber,
        window.period,
        window.start,
        window.end,
        sections,
        tuple(rising[:RISING_LIMIT]),
        len(candidates),
        matched,
        window.dumps,
        tuple(more),
    )


def build(
    engine: Engine,
    settings: Settings,
    subscriber: SubscriberSettings,
    now: dt.datetime,
    since: dt.date | None = None,
    window_cache: dict[tuple[int, int], list[Paper]] | None = None,
    hit_cache: HitCache | None = None,
) -> Digest:
    """Read the window from the store and select. `since` previews papers first seen on or after a date;
    `window_cache` lets a batch of subscribers with the same window read it once."""
    if since is None:
        return build_many(engine, settings, [subscriber], now, window_cache, hit_cache)[0]
    with engine.connect() as conn:
        last = queries.last_window(conn, subscriber.email)
        window = period_window(subscriber, now, last[0] if last else None)
        zone = ZoneInfo(subscriber.timezone)
        window = Window(window.period, dt.datetime.combine(since, dt.time(), zone), now)
        candidates = queries.papers_first_seen_since(conn, since)
        sent = queries.sent_among(conn, subscriber.email, (p.id for p in candidates))
        gained = queries.sent_and_gained(conn, subscriber.email, settings.digest.rising_min_gain)
    sent.update((paper.id, then) for paper, then in gained)
    return select(settings, subscriber, window, candidates, sent, [paper for paper, _ in gained], hit_cache)


def build_many(
    engine: Engine,
    settings: Settings,
    due: Sequence[SubscriberSettings],
    now: dt.datetime,
    window_cache: dict[tuple[int, int], list[Paper]] | None = None,
    hit_cache: HitCache | None = None,
    rankings: Rankings | None = None,
) -> list[Digest]:
    """build() for a batch of subscribers (distinct addresses), in the order given: their last
    windows, sent papers and rising papers each read in one statement for the whole batch, and
    the newest dump once (a window ends at the newest dump committed when its batch was read)."""
    if window_cache is None:
        window_cache = {}
    emails = [subscriber.email.lower() for subscriber in due]
    with engine.connect() as conn:
        lasts = queries.last_windows(conn, emails)
        newest = queries.newest_dump(conn)
        newest_at: dict[dt.datetime, int] = {}  # subscribers on one cron share their window's start
        windows: list[Window] = []
        for subscriber, email in zip(due, emails, strict=True):
            last = lasts.get(email)
            window = period_window(subscriber, now, last[0] if last else None)
            if last is not None and last[1] is not None and last[0] == window.start:
                first = last[1]  # from the last dump of the previous digest
            else:  # the first digest: the last dump ingested by the window's start
                if window.start not in newest_at:
                    newest_at[window.start] = queries.newest_dump(conn, at=window.start)
                first = newest_at[window.start]
            window = dataclasses.replace(window, dumps=(first, max(first, newest)))
            if window.dumps not in window_cache:
                window_cache[window.dumps] = queries.papers_of_dumps(conn, *window.dumps)
            windows.append(window)
        sent: dict[str, dict[int, int | None]] = {}
        for dumps in dict.fromkeys(w.dumps for w in windows):  # one read per distinct window
            readers = [email for email, w in zip(emails, windows, strict=True) if w.dumps == dumps]
            sent.update(queries.sent_among_many(conn, readers, (p.id for p in window_cache[dumps])))
        gained = queries.sent_and_gained_many(conn, emails, settings.digest.rising_min_gain)
    built = []
    for subscriber, email, window in zip(due, emails, windows, strict=True):
        seen = dict(sent[email])
        seen.update((paper.id, then) for paper, then in gained[email])
        rising = [paper for paper, _ in gained[email]]
        candidates = window_cache[window.dumps]
        built.append(select(settings, subscriber, window, candidates, seen, rising, hit_cache, rankings))
    return built


def empty_preview_hint(built: Digest, now: dt.datetime) -> str | None:
    """What to say when a preview comes out empty: why, and how to see papers anyway."""
    if not built.empty:
        return None
    week_ago = (now - dt.timedelta(days=7)).date()
    return (
        f"{built.subscriber.email}: nothing new since {built.window_start.astimezone(dt.UTC):%Y-%m-%d %H:%M}Z "
        "(where the window of its last digest ended, or the cron's previous fire); "
        f"to preview papers already mailed or backfilled, use --since DATE (e.g. --since {week_ago})"
    )
