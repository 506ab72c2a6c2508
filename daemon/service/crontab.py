"""The crontab(5) language, and when an expression fires in a timezone.

    spec = parse("30 8 * * mon-fri")                  # five fields, or @daily, @weekly, ...
    trigger = CrontabTrigger(spec, ZoneInfo("Europe/Berlin"))
    trigger.get_next_fire_time(None, now)             # an APScheduler 3 trigger the daemon schedules
                                                      # (registered as one by service/scheduler.py)

Read as Vixie cron and cronie read it:
- minute 0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-7 or
  sun-sat, where 0 and 7 are both Sunday; names are three letters in any case.
- a field is a comma list of `*`, `n`, `a-b`, `*/s` and `a-b/s`; a range runs upwards.
- day of month and day of week: when both are restricted (neither field starts with `*`), a
  day matching either one fires; otherwise a day must match both, so `*/2` is "unrestricted".
- daylight saving time as cron handles it: a job whose minute or hour field starts with `*`
  follows the wall clock (an hour that is skipped does not run, one that repeats runs twice);
  any other job runs once for each of its times: a time skipped by a spring-forward runs at
  the first moment after the gap, a time that repeats at a fall-back runs the first time only.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# Not a subclass of APScheduler's BaseTrigger: the config's validation and `status` ask a trigger
# for its next fire time and start without APScheduler (issue 13: its package reads its own
# version from its metadata at import). service/scheduler.py, which hands triggers to APScheduler,
# registers CrontabTrigger as a BaseTrigger (an ABC), whose one abstract method it implements.

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CALENDAR_CYCLE_MONTHS = 400 * 12  # the Gregorian calendar repeats every 400 years
_AROUND = (-dt.timedelta(days=1), dt.timedelta(0), dt.timedelta(days=1))


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    hint: str = ""


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, " (or jan-dec)"),
    _Field("day of week", 0, 7, _WEEKDAYS, " (0 and 7 are Sunday; or sun-sat)"),
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed expression: the values each field allows, and the two rules that need the text."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday (7 is folded into 0)
    day_or: bool  # both day fields restricted: a day matching either fires
    by_wall_clock: bool  # minute or hour field starts with '*': DST changes follow the wall clock

    def matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        return (in_days or in_weekdays) if self.day_or else (in_days and in_weekdays)


def parse(expression: str) -> CronSpec:
    """A crontab(5) time specification; ValueError naming the field and the reason when it is not one."""
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise ValueError("@reboot has no schedule: give five cron fields or @hourly, @daily, @weekly, ...")
        if text.lower() not in _SHORTHANDS:
            raise ValueError(f"unknown {text!r}: use five cron fields or one of {', '.join(_SHORTHANDS)}")
        text = _SHORTHANDS[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected five cron fields (minute hour day month weekday), got {expression!r}")
    minutes, hours, days, months, weekdays = (
        _parse_field(value, field, expression) for value, field in zip(fields, _FIELDS, strict=True)
    )
    spec = CronSpec(
        expression=expression,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(day % 7 for day in weekdays),
        day_or=not fields[2].startswith("*") and not fields[4].startswith("*"),
        by_wall_clock=fields[0].startswith("*") or fields[1].startswith("*"),
    )
    if next(_matching_days(spec, dt.date(2000, 1, 1)), None) is None:
        raise ValueError(f"{expression!r} never fires: none of its days of the month occurs in its months")
    return spec


def _parse_field(text: str, field: _Field, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        where = f"{field.name} {item!r} in {expression!r}"
        body, slash, step_text = item.partition("/")
        if body == "*":
            low, high = field.low, field.high
        elif "-" in body:
            first, _, last = body.partition("-")
            low, high = _number(first, field, where), _number(last, field, where)
            if low > high:
                sunday = " (Sunday at the end of a range is 7)" if field.names == _WEEKDAYS and high == 0 else ""
                raise ValueError(f"{where}: the range runs backwards, from {low} down to {high}{sunday}")
        elif slash:
            raise ValueError(f"{where}: a step needs a range or '*' (such as {body}-{field.high}/{step_text})")
        else:
            low = high = _number(body, field, where)
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise ValueError(f"{where}: a step must be a whole number of at least 1")
            step = int(step_text)
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _number(token: str, field: _Field, where: str) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
        if not field.low <= value <= field.high:
            raise ValueError(f"{where}: {value} is out of range {field.low}-{field.high}{field.hint}")
        return value
    if token.lower() in field.names:
        return field.low + field.names.index(token.lower())
    if not token:
        raise ValueError(f"{where}: a value is missing")
    expected = f"a number or a name ({field.names[0]}-{field.names[-1]})" if field.names else "a number"
    raise ValueError(f"{where}: {token!r} is not {expected}")


def _matching_days(spec: CronSpec, first: dt.date) -> Iterator[dt.date]:
    """The days the expression allows, from `first` on, for at most one calendar cycle."""
    year, month, start = first.year, first.month, first.day
    for _ in range(_CALENDAR_CYCLE_MONTHS + 1):
        if month in spec.months:
            for number in range(start, calendar.monthrange(year, month)[1] + 1):
                day = dt.date(year, month, number)
                if spec.matches_day(day):
                    yield day
        year, month, start = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
        if year > dt.MAXYEAR - 1:
            return


class CrontabTrigger:
    """Fires when the wall clock in `zone` matches `spec`, with cron's rules for DST changes."""

    __slots__ = ("_times", "spec", "zone")

    def __init__(self, spec: CronSpec, zone: ZoneInfo) -> None:
        self.spec = spec
        self.zone = zone
        self._times = sorted(hour * 60 + minute for hour in spec.hours for minute in spec.minutes)

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        """APScheduler's question, answered as its CronTrigger does: the first fire after the
        previous one (or at or after `now` when that is earlier), else the first at or after `now`.
        Instants are compared and returned in UTC: wall times in a zone compare without their fold."""
        start = now.astimezone(dt.UTC)
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(dt.UTC)
            start = min(start, previous + dt.timedelta(microseconds=1))
            if start == previous:
                start += dt.timedelta(microseconds=1)
        return self.next_fire(start)

    def next_fire(self, start: dt.datetime) -> dt.datetime | None:
        """The first fire time (UTC) at or after the aware datetime `start`."""
        start = start.astimezone(dt.UTC)
        lower = self._earliest_wall_time(start)
        later_repeat: dt.datetime | None = None  # a second occurrence seen before the answer
        for day in _matching_days(self.spec, lower.date()):
            floor = lower.hour * 60 + lower.minute if day == lower.date() else 0
            for minute_of_day in self._times[bisect.bisect_left(self._times, floor) :]:
                wall = dt.datetime.combine(day, dt.time(minute_of_day // 60, minute_of_day % 60))
                first, repeat = self._instants(wall)
                if repeat is not None and repeat >= start and (later_repeat is None or repeat < later_repeat):
                    later_repeat = repeat
                if first is not None and first >= start:
                    # Fire instants grow with the wall time, except repeats: the earliest wins.
                    return min(first, later_repeat) if later_repeat is not None else first
        return later_repeat

    def _earliest_wall_time(self, start: dt.datetime) -> dt.datetime:
        """A wall time early enough that every fire at or after `start` comes from it or later:
        `start` read with the smallest offset in force a day around it (a repeated hour's
        second run and a skipped hour's catch-up come from wall times before start's own)."""
        offsets = [(start + shift).astimezone(self.zone).utcoffset() for shift in _AROUND]
        smallest = min(offset for offset in offsets if offset is not None)
        return (start + smallest).replace(tzinfo=None, second=0, microsecond=0)

    def _instants(self, wall: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
        """When the wall time `wall` fires (UTC): (first, repeat), either one None when it does not."""
        early, late = wall.replace(tzinfo=self.zone, fold=0), wall.replace(tzinfo=self.zone, fold=1)
        if early.utcoffset() == late.utcoffset():
            return early.astimezone(dt.UTC), None
        first, second = early.astimezone(dt.UTC), late.astimezone(dt.UTC)
        if first < second:  # a fall-back: the wall time happens twice
            return first, (second if self.spec.by_wall_clock else None)
        if self.spec.by_wall_clock:  # a spring-forward skipped it
            return None, None
        return self._end_of_gap(second, first), None

    def _end_of_gap(self, before: dt.datetime, after: dt.datetime) -> dt.datetime:
        """The moment the clock jumped forward, between two instants on either side of it."""
        low, high = int(before.timestamp()), int(after.timestamp())
        offset_after = after.astimezone(self.zone).utcoffset()
        while high - low > 1:
            middle = (low + high) // 2
            if dt.datetime.fromtimestamp(middle, self.zone).utcoffset() == offset_after:
                high = middle
            else:
                low = middle
        return dt.datetime.fromtimestamp(high, dt.UTC)

    def __str__(self) -> str:
        return f"crontab[{self.spec.expression}, {self.zone}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.spec.expression!r}, timezone={str(self.zone)!r})>"
