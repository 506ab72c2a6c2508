"""When things happen: cron periods in a timezone and `every` intervals. Pure functions of `now`."""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo

from paperdigest.service.crontab import CrontabTrigger, parse

_EVERY = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> dt.timedelta:
    """'15m' -> 15 minutes; units s, m, h, d."""
    match = _EVERY.match(text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"expected a duration such as '30s', '15m', '1h' or '1d', got {text!r}")
    try:
        return dt.timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    except OverflowError:  # more than a timedelta holds (999,999,999 days)
        raise ValueError(f"duration too long: {text!r}") from None


@functools.lru_cache(maxsize=256)
def cron_trigger(expression: str, timezone: str | ZoneInfo = "UTC") -> CrontabTrigger:
    """A crontab(5) expression in a timezone (see crontab.py); ValueError when it is not one.
    Cached: a trigger is immutable, and a batch of subscribers mostly shares a few."""
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return CrontabTrigger(parse(expression), zone)


@functools.lru_cache(maxsize=1024)
def latest_fire(trigger: CrontabTrigger, now: dt.datetime) -> dt.datetime | None:
    """The latest fire time at or before `now` (None if it never fired in the last four years).
    Cached: pure, and asked for every subscriber of a batch with the same trigger and time."""
    for lookback in (dt.timedelta(hours=2), dt.timedelta(days=2), dt.timedelta(days=40), dt.timedelta(days=1500)):
        latest: dt.datetime | None = None
        fire: dt.datetime | None = trigger.get_next_fire_time(None, now - lookback)
        while fire is not None and fire <= now:
            latest = fire
            fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
        if latest is not None:
            return latest
    return None


def fire_before(trigger: CrontabTrigger, fire: dt.datetime) -> dt.datetime | None:
    """The fire time just before `fire`."""
    return latest_fire(trigger, fire - dt.timedelta(seconds=1))
