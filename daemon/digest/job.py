"""The digest job: plan the periods that are due, build each digest, render it, compose the
message, and hand the finished message to the outbox (which only stores, claims, delivers).

    settle what a stopped sender left accepted        # so new digests know those papers as sent
    for subscriber in settings.subscribers:
        period = latest fire of its cron at or before now (its timezone)
        if the outbox holds (subscriber, period): next # one digest per period
        digest  = build(window since its last digest)  # selection.py: dumps in commit order
        message = compose(render(digest))              # render.py, mail/message.py
        outbox.add(row, message)                       # pending, or `empty` (recorded, not mailed)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import jinja2
from sqlalchemy import Engine

from paperdigest import subscribers
from paperdigest.config import Settings, SubscriberSettings
from paperdigest.digest import render
from paperdigest.digest.selection import Digest, build
from paperdigest.mail import outbox
from paperdigest.mail.message import build_message, message_id, split_from
from paperdigest.model import Paper
from paperdigest.score import HitCache
from paperdigest.service.schedule import cron_trigger, latest_fire
from paperdigest.web.links import LinkMaker, link_maker


@dataclass(frozen=True, slots=True)
class Planned:
    subscriber: str
    period: dt.datetime
    papers: int
    subject: str
    status: str  # pending | empty


def current_period(subscriber: SubscriberSettings, now: dt.datetime) -> dt.datetime | None:
    """The cron fire the subscriber's digest is due for now (None: the cron never fired yet)."""
    fire = latest_fire(cron_trigger(subscriber.cron, subscriber.timezone), now)
    return fire.astimezone(dt.UTC) if fire is not None else None


def compose(
    settings: Settings,
    built: Digest,
    period: dt.datetime,
    now: dt.datetime,
    env: jinja2.Environment,
    links: LinkMaker | None = None,
) -> tuple[dict[str, Any], bytes]:
    """A digest as the outbox keeps it: its row (status, window, Message-ID, papers) and message,
    with its links when `links` (the `[web]` side) is given."""
    subscriber = built.subscriber
    mail_links = links.for_digest(subscriber.email, period) if links is not None else None
    text, html = render.render_both(
        built,
        env,
        text=subscriber.format in ("text", "both"),
        html=subscriber.format in ("html", "both"),
        links=mail_links,
        unsubscribe_by_mail=split_from(settings.mail.from_)[1],
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
        unsubscribe_url=mail_links.unsubscribe if mail_links is not None else None,
    )
    empty = built.empty and not settings.digest.send_empty
    row = {
        "subscriber": subscriber.email.lower(),
        "period": period,
        "window_start": built.window_start,
        "window_end": built.window_end,
        "window_start_dump": built.dumps[0],
        "window_end_dump": built.dumps[1],
        "created_at": now,
        "status": "empty" if empty else "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "message_id": msg_id,
        "subject": subject,
        "papers": json.dumps({str(s.paper.id): s.paper.upvotes for s in built.papers}),
    }
    return row, message


def queue_due(engine: Engine, settings: Settings, now: dt.datetime, dry_run: bool = False) -> list[Planned]:
    """Build every digest that is due and not in the outbox yet, and queue it there."""
    if not dry_run:
        outbox.record_accepted(engine, now)
    settings = subscribers.effective(engine, settings)  # the config's and the store's, still subscribed
    planned = []
    env = render.environment(settings.digest.templates)
    links = link_maker(settings)
    windows: dict[tuple[int, int], list[Paper]] = {}  # subscribers on one cron share their window
    hits = HitCache()  # and score the same papers against the same topics
    for subscriber in settings.subscribers:
        period = current_period(subscriber, now)
        if period is None or outbox.holds(engine, subscriber.email, period):
            continue
        built = build(engine, settings, subscriber, now, window_cache=windows, hit_cache=hits)
        row, message = compose(settings, built, period, now, env, links)
        item = Planned(subscriber.email, period, len(built.papers), row["subject"], row["status"])
        if dry_run or outbox.add(engine, row, message):  # False: another sender stored this period first
            planned.append(item)
    return planned
