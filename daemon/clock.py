"""The one clock seam: nothing else in the program asks for the current time.

PAPERDIGEST_NOW (an ISO datetime) pins the clock, for tests and reproducible previews.
"""

from __future__ import annotations

import datetime as dt
import os
import time


def now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    pinned = os.environ.get("PAPERDIGEST_NOW")
    if pinned:
        value = dt.datetime.fromisoformat(pinned)
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)


def as_utc(value: object) -> dt.datetime | None:
    """A stored moment as an aware UTC datetime (SQLite hands them back naive; all are stored in UTC)."""
    if not isinstance(value, dt.datetime):
        return None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(value: object) -> str | None:
    """`as_utc(value)` in ISO 8601, or None."""
    moment = as_utc(value)
    return moment.isoformat() if moment else None


def today() -> dt.date:
    """Today's date in UTC."""
    return now().date()


def sleep(seconds: float) -> None:
    """Wait (the seam's other half: tests replace it to wait for nothing)."""
    time.sleep(seconds)


def monotonic() -> float:
    """Seconds on a clock that never goes back, for measuring waits (not a time of day)."""
    return time.monotonic()
