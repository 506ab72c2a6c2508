"""The digest job: plan the periods that are due, build each digest, render it, compose the
message, and hand the finished message to the outbox (which only stores, claims, delivers).

    settle what a stopped sender left accepted        # so new digests know those papers as sent
    due = (subscriber, latest fire of its cron at or before now) not in the outbox yet
    for a batch of them:
        outbox.reserve(batch)                          # rows `building`, claimed by this process:
                                                       # no other process renders them
        for each pair reserved:
            digest  = build(window since its last digest)  # selection.py: dumps in commit order
            message = compose(render(digest))              # render.py, mail/message.py
        outbox.fill(rows, messages)                    # pending, or `empty` (recorded, not mailed)
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
from paperdigest.digest.ranking import Rankings
from paperdigest.digest.selection import Digest, build_many
from paperdigest.mail import outbox
from paperdigest.mail.message import build_message, message_id, split_from
from paperdigest.model import Paper
from paperdigest.score import HitCache
from paperdigest.service.leader import Replica, registered
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
        references=True,  # pure ASCII HTML: its part goes out 7-bit, not quoted-printable
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


RESERVE_BATCH = 50  # digests reserved in one transaction, and stored in one


def queue_due(
    engine: Engine, settings: Settings, now: dt.datetime, dry_run: bool = False, replica: Replica | None = None
) -> list[Planned]:
    """Build every digest that is due and not in the outbox yet, and queue it there. Each
    (subscriber, period) row is reserved by `replica` (None: this process registers as a one-shot
    `sender`) before its digest is built, so no two processes render one digest."""
    if not dry_run:
        outbox.record_accepted(engine, now, settings)
    settings = subscribers.effective(engine, settings)  # the config's and the store's, still subscribed
    due = [(s, period) for s in settings.subscribers if (period := current_period(s, now)) is not None]
    there = outbox.held(engine, [period for _, period in due])
    due = [(s, period) for s, period in due if (s.email.lower(), period) not in there]
    if not due:
        return []
    batch = _Batch(settings, now)
    if dry_run:
        chunks = (due[at : at + RESERVE_BATCH] for at in range(0, len(due), RESERVE_BATCH))
        return [item for chunk in chunks for item, _, _ in batch.build(engine, chunk)]
    planned: list[Planned] = []
    with registered(engine, outbox.takeover(settings), replica) as me:
        for at in range(0, len(due), RESERVE_BATCH):
            chunk = due[at : at + RESERVE_BATCH]
            ours = outbox.reserve(engine, [(s.email, period) for s, period in chunk], me, now)
            # The pairs not reserved here another process builds, or has.
            mine = [(s, period) for s, period in chunk if (s.email.lower(), period) in ours]
            done = [
                (item, (ours[(item.subscriber.lower(), item.period)], row, message))
                for item, row, message in batch.build(engine, mine)
            ]
            stored = outbox.fill(engine, me, [filled for _, filled in done])
            planned += [item for (item, _), kept in zip(done, stored, strict=True) if kept]
    return planned


class _Batch:
    """What the digests of one run share: templates, links, windows and scores."""

    def __init__(self, settings: Settings, now: dt.datetime) -> None:
        self.settings = settings
        self.now = now
        self.env = render.environment(settings.digest.templates)
        self.links = link_maker(settings)
        self.windows: dict[tuple[int, int], list[Paper]] = {}  # subscribers on one cron share their window
        self.hits = HitCache()  # and score the same papers against the same topics
        self.rankings = Rankings(settings.scoring, self.hits)  # each topic's papers of a window sorted once

    def build(
        self, engine: Engine, due: list[tuple[SubscriberSettings, dt.datetime]]
    ) -> list[tuple[Planned, dict[str, Any], bytes]]:
        """The digests of these (subscriber, period) pairs, their store reads batched (build_many)."""
        if not due:
            return []
        digests = build_many(
            engine, self.settings, [s for s, _ in due], self.now, self.windows, self.hits, self.rankings
        )
        out = []
        for (subscriber, period), built in zip(due, digests, strict=True):
            row, message = compose(self.settings, built, period, self.now, self.env, self.links)
            item = Planned(subscriber.email, period, len(built.papers), row["subject"], row["status"])
            out.append((item, row, message))
        return out
