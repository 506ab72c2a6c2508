"""Who gets digests: the config's [[subscribers]], and the subscribers kept in the store
(`paperdigest subscribers add`). The config wins for the addresses it names. An address that
unsubscribed (one-click, from the mail) gets nothing, wherever it is listed, until it is added
again with `subscribers add`.

    effective(engine, settings) -> settings whose `subscribers` are the ones to mail now
    effective_with(settings, rows) -> the same, from the store's subscriber rows already read
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from sqlalchemy import Engine

from paperdigest import clock
from paperdigest.config import Settings, SubscriberSettings, describe_validation_error
from paperdigest.errors import UsageError

# The store's queries are imported by the functions that read or write (each marked `# lazy:`):
# `status` reads the subscriber rows itself and merges them here without the SQLModel tables.
if TYPE_CHECKING:
    from sqlalchemy import Row

Origin = Literal["config", "store"]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscriber as `subscribers list` shows it: where it comes from and whether it is mailed."""

    settings: SubscriberSettings
    origin: Origin
    unsubscribed_at: dt.datetime | None

    @property
    def subscribed(self) -> bool:
        return self.unsubscribed_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.settings.model_dump(),
            "origin": self.origin,
            "subscribed": self.subscribed,
            "unsubscribed_at": clock.iso(self.unsubscribed_at),
        }


def subscriptions(engine: Engine, settings: Settings) -> list[Subscription]:
    """Every subscriber, the config's first (in its order), then the store's (by address)."""
    from paperdigest.store import queries  # noqa: PLC0415  lazy: the SQLModel tables (see above)

    with engine.connect() as conn:
        return subscriptions_with(settings, queries.stored_subscribers(conn))


def subscriptions_with(settings: Settings, stored_rows: Iterable[Row[Any]]) -> list[Subscription]:
    """`subscriptions`, from the store's subscriber rows (by address)."""
    rows = {row.email: row for row in stored_rows}
    listed = []
    for subscriber in settings.subscribers:
        row = rows.get(subscriber.email.lower())
        listed.append(Subscription(subscriber, "config", clock.as_utc(row.unsubscribed_at) if row else None))
    named = {s.email.lower() for s in settings.subscribers}
    for email, row in rows.items():
        if email in named or row.settings is None:
            continue
        stored = _stored_settings(settings, row.settings)
        if stored is not None:
            listed.append(Subscription(stored, "store", clock.as_utc(row.unsubscribed_at)))
    return listed


def effective(engine: Engine, settings: Settings) -> Settings:
    """The settings with the subscribers to mail now: config and store, unsubscribed ones left out."""
    return _mailed(settings, subscriptions(engine, settings))


def effective_with(settings: Settings, stored_rows: Iterable[Row[Any]]) -> Settings:
    """`effective`, from the store's subscriber rows (by address)."""
    return _mailed(settings, subscriptions_with(settings, stored_rows))


def _mailed(settings: Settings, listed: list[Subscription]) -> Settings:
    return settings.model_copy(update={"subscribers": [s.settings for s in listed if s.subscribed]})


def _stored_settings(settings: Settings, stored: str) -> SubscriberSettings | None:
    """A stored subscriber, checked again against today's config (a topic may have gone)."""
    try:
        subscriber = SubscriberSettings.model_validate(json.loads(stored))
    except (ValueError, ValidationError):
        return None
    if any(topic not in settings.topics for topic in subscriber.topics):
        return None
    return subscriber


def add(engine: Engine, settings: Settings, values: dict[str, Any]) -> str:
    """Add a subscriber to the store (or change one, or subscribe an unsubscribed address again).
    For an address the store keeps, the options not in `values` keep their stored values, not the
    defaults. Checked like the config; returns what was done, for the command to print."""
    from paperdigest.store import queries  # noqa: PLC0415  lazy: the SQLModel tables (see above)

    email = str(values.get("email", "")).lower()
    in_config = any(s.email.lower() == email for s in settings.subscribers)
    with engine.connect() as conn:
        row = next((r for r in queries.stored_subscribers(conn) if r.email == email), None)
    kept = _kept_values(row) if row is not None and not in_config else {}
    try:
        subscriber = SubscriberSettings.model_validate({**kept, **values})
    except ValidationError as exc:
        raise UsageError(f"subscribers add: {describe_validation_error(exc)}") from None
    unknown = [topic for topic in subscriber.topics if topic not in settings.topics]
    if unknown:
        known = ", ".join(sorted(settings.topics)) or "none defined"
        given = "--topics" if "topics" in values else "its stored topics (give --topics)"
        raise UsageError(f"subscribers add: {given}: unknown topic {unknown[0]!r} (known: {known})")
    stored = None if in_config else json.dumps(subscriber.model_dump(), sort_keys=True)
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        queries.save_subscriber(conn, email, {"settings": stored, "added_at": clock.now(), "unsubscribed_at": None})
    if in_config:
        return f"{email} is in the config ({settings.origin}), whose settings it keeps; it is subscribed"
    if row is None or not kept:
        return f"{email} added to the store"
    if row.unsubscribed_at is not None:
        return f"{email} subscribed again"
    changed = [key for key, value in subscriber.model_dump().items() if key != "email" and kept.get(key) != value]
    if not changed:
        return f"{email} is in the store already, as given"
    return f"{email} changed in the store: {', '.join(changed)}"


def _kept_values(row: Row[Any]) -> dict[str, Any]:
    """The options a store subscriber's row holds (none for an address only unsubscribed)."""
    if row.settings is None:
        return {}
    try:
        kept = json.loads(row.settings)
    except ValueError:
        return {}
    return {key: value for key, value in kept.items() if key != "email"} if isinstance(kept, dict) else {}


def remove(engine: Engine, settings: Settings, email: str) -> str:
    """Remove a subscriber kept in the store. One the config names cannot be removed from here,
    so it is unsubscribed instead (kept in the store, which wins over the config): never mailed
    until `subscribers add` subscribes it again."""
    from paperdigest.store import queries  # noqa: PLC0415  lazy: the SQLModel tables (see above)

    if any(s.email.lower() == email.lower() for s in settings.subscribers):
        unsubscribe(engine, email)
        return (
            f"{email.lower()} is in the config ({settings.origin}): unsubscribed (never mailed while"
            " unsubscribed; remove it from the config to drop it, `subscribers add` to subscribe it again)"
        )
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        if not queries.delete_subscriber(conn, email):
            raise UsageError(f"subscribers remove: no subscriber {email} in the store")
    return f"{email.lower()} removed"


def unsubscribe(engine: Engine, email: str) -> None:
    """Never mail `email` again, wherever it is listed, until it is added again."""
    from paperdigest.store import queries  # noqa: PLC0415  lazy: the SQLModel tables (see above)

    now = clock.now()
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        rows = {row.email: row for row in queries.stored_subscribers(conn)}
        row = rows.get(email.lower())
        if row is not None and row.unsubscribed_at is not None:
            return  # already: keep when it happened
        values = {"unsubscribed_at": now} if row is not None else {"added_at": now, "unsubscribed_at": now}
        queries.save_subscriber(conn, email, values)


def unsubscribed(engine: Engine) -> set[str]:
    """The addresses that unsubscribed (lower-cased)."""
    from paperdigest.store import queries  # noqa: PLC0415  lazy: the SQLModel tables (see above)

    with engine.connect() as conn:
        return {row.email for row in queries.stored_subscribers(conn) if row.unsubscribed_at is not None}
