"""Cron expressions mean what crontab(5) means (issue 8): weekdays, names, the day-of-month /
day-of-week OR rule, daylight saving time, and croniter as an independent second opinion."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from paperdigest import config
from paperdigest.errors import ConfigError
from paperdigest.service.schedule import cron_trigger, latest_fire
from tests.conftest import ROOT

UTC = dt.UTC
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
JAN_1 = "2026-01-01T00:00:00+00:00"  # a Thursday


def fires(expression: str, zone: str = "UTC", start: str = JAN_1, count: int = 20) -> list[dt.datetime]:
    """The first `count` fire times at or after `start`, read on `zone`'s wall clock."""
    trigger = cron_trigger(expression, zone)
    fire = trigger.get_next_fire_time(None, dt.datetime.fromisoformat(start))
    found: list[dt.datetime] = []
    while fire is not None and len(found) < count:
        found.append(fire.astimezone(ZoneInfo(zone)))
        fire = trigger.get_next_fire_time(fire, fire)
    return found


def weekdays(expression: str, zone: str = "UTC") -> set[str]:
    return {DAY_NAMES[fire.weekday()] for fire in fires(expression, zone, count=30)}


def fires_on(expression: str, zone: str, day: str) -> list[str]:
    """The fires during one local day, as wall time and UTC offset ("02:30+0200")."""
    tz = ZoneInfo(zone)
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=tz)
    found = fires(expression, zone, start=midnight.isoformat(), count=200)
    return [f"{fire:%H:%M%z}" for fire in found if fire.date() == midnight.date()]


# --- the weekday field -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("30 8 * * 1", {"Mon"}),  # deploy/config.example.toml: "Mondays at 08:30"
        ("0 7 * * 0", {"Sun"}),
        ("30 8 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 7 * * 7", {"Sun"}),
    ],
)
def test_issue_examples_fire_on_the_weekday_cron_means(expression: str, days: set[str]) -> None:
    found = fires(expression, "America/New_York", count=30)
    assert {DAY_NAMES[fire.weekday()] for fire in found} == days
    minute, hour = expression.split()[:2]
    assert {f"{fire:%H:%M}" for fire in found} == {f"{hour:0>2}:{minute:0>2}"}


@pytest.mark.parametrize(
    ("named", "numbered", "days"),
    [
        ("0 7 * * MON-FRI", "0 7 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 7 * * sun", "0 7 * * 0", {"Sun"}),
        ("0 7 * * Sat,SUN", "0 7 * * 6,0", {"Sat", "Sun"}),
        ("0 7 * * sun-wed", "0 7 * * 0-3", {"Sun", "Mon", "Tue", "Wed"}),
        ("0 7 * * tue-sat/2", "0 7 * * 2-6/2", {"Tue", "Thu", "Sat"}),
        ("0 7 * JAN-mar/2 mon", "0 7 * 1-3/2 1", {"Mon"}),
    ],
)
def test_names_mean_their_numbers(named: str, numbered: str, days: set[str]) -> None:
    assert fires(named, count=30) == fires(numbered, count=30)
    assert weekdays(named) == days


def test_month_names_pick_their_months() -> None:
    found = fires("0 7 1 JAN-mar/2,Dec mon", count=60)  # the 1st of Jan, Mar, Dec, or any Monday of them
    assert {fire.month for fire in found} == {1, 3, 12}
    assert all(fire.day == 1 or fire.weekday() == 0 for fire in found)


def test_seven_and_zero_are_both_sunday() -> None:
    assert fires("0 7 * * 7") == fires("0 7 * * 0") == fires("0 7 * * sun") == fires("0 7 * * 0,7")
    assert weekdays("0 7 * * 5-7") == {"Fri", "Sat", "Sun"}
    assert weekdays("0 7 * * 0-7") == set(DAY_NAMES)
    assert weekdays("0 7 * * */7") == {"Sun"}  # 0 and 7


@pytest.mark.parametrize(
    ("expression", "times", "days"),
    [
        ("*/15 9 * * 1", {"09:00", "09:15", "09:30", "09:45"}, {"Mon"}),
        ("0-30/10 9,17 * * 2", {f"{h}:{m}" for h in ("09", "17") for m in ("00", "10", "20", "30")}, {"Tue"}),
        ("5 8-10 * * 1,3,5", {"08:05", "09:05", "10:05"}, {"Mon", "Wed", "Fri"}),
        ("0 12 * * */2", {"12:00"}, {"Sun", "Tue", "Thu", "Sat"}),  # 0-7/2: 0, 2, 4, 6
        ("0 12 * * 1-7/2", {"12:00"}, {"Mon", "Wed", "Fri", "Sun"}),  # 1, 3, 5, 7
        ("0 0-23/6 * * 3-4", {"00:00", "06:00", "12:00", "18:00"}, {"Wed", "Thu"}),
    ],
)
def test_ranges_steps_and_lists(expression: str, times: set[str], days: set[str]) -> None:
    found = fires(expression, count=80)
    assert {f"{fire:%H:%M}" for fire in found} == times
    assert {DAY_NAMES[fire.weekday()] for fire in found} == days


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        # Both day fields restricted: either one is enough (the 13th, and every Friday).
        ("0 0 13 * 5", lambda d: d.day == 13 or d.weekday() == 4),
        ("0 0 1,15 * mon", lambda d: d.day in (1, 15) or d.weekday() == 0),
        ("0 0 1-31 * 1", lambda d: True),  # 1-31 is a restriction too, only '*' is not
        # A field starting with '*' counts as unrestricted, even with a step: then both must match.
        ("0 0 */2 * 1", lambda d: d.day % 2 == 1 and d.weekday() == 0),
        ("0 0 1 * */2", lambda d: d.day == 1 and d.weekday() in (6, 1, 3, 5)),
        ("0 0 * * 5", lambda d: d.weekday() == 4),
    ],
)
def test_day_of_month_or_day_of_week(expression: str, matches: Any) -> None:
    found = fires(expression, count=120)
    days = [
        dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range((found[-1].date() - dt.date(2026, 1, 1)).days + 1)
    ]
    assert [fire.date() for fire in found] == [day for day in days if matches(day)]


@pytest.mark.parametrize(
    ("shorthand", "expression"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_shorthands(shorthand: str, expression: str) -> None:
    assert fires(shorthand, "Europe/Berlin") == fires(expression, "Europe/Berlin")


# --- refused expressions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 7 * * 8", "day of week '8' in '0 7 * * 8': 8 is out of range 0-7 (0 and 7 are Sunday"),
        ("60 7 * * *", "minute '60' in '60 7 * * *': 60 is out of range 0-59"),
        ("0 24 * * *", "hour '24' in '0 24 * * *': 24 is out of range 0-23"),
        ("0 7 0 * *", "day of month '0' in '0 7 0 * *': 0 is out of range 1-31"),
        ("0 7 * 13 *", "month '13' in '0 7 * 13 *': 13 is out of range 1-12"),
        ("0 7 * * fri-mon", "day of week 'fri-mon' in '0 7 * * fri-mon': the range runs backwards, from 5 down to 1"),
        ("0 7 * * sat-sun", "the range runs backwards, from 6 down to 0 (Sunday at the end of a range is 7)"),
        ("*/0 7 * * *", "minute '*/0' in '*/0 7 * * *': a step must be a whole number of at least 1"),
        ("5/10 * * * *", "minute '5/10' in '5/10 * * * *': a step needs a range or '*' (such as 5-59/10)"),
        ("0 7 * * monday", "day of week 'monday' in '0 7 * * monday': 'monday' is not a number or a name (sun-sat)"),
        ("0 7 * jan-foo *", "'foo' is not a number or a name (jan-dec)"),
        ("0 7 L * *", "day of month 'L' in '0 7 L * *': 'L' is not a number"),
        ("0 7 * * 1#2", "day of week '1#2' in '0 7 * * 1#2': '1#2' is not a number or a name"),
        ("0 7 ? * 1", "day of month '?' in '0 7 ? * 1': '?' is not a number"),
        ("0 7 1W * *", "'1W' is not a number"),
        ("1,,2 * * * *", "minute '' in '1,,2 * * * *': a value is missing"),
        ("*-5 * * * *", "minute '*-5' in '*-5 * * * *': '*' is not a number"),
        ("@reboot", "@reboot has no schedule"),
        ("@fortnightly", "unknown '@fortnightly': use five cron fields or one of @yearly"),
        ("0 0 30 2 *", "'0 0 30 2 *' never fires: none of its days of the month occurs in its months"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ],
)
def test_invalid_expressions_are_refused_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        cron_trigger(expression)


def test_a_config_names_the_key_and_the_reason() -> None:
    subscribers = [{"email": "a@x.org"}, {"email": "b@x.org"}, {"email": "c@x.org", "cron": "0 7 * * 8"}]
    with pytest.raises(ConfigError) as refused:
        config.validate({"subscribers": subscribers}, "c.toml")
    assert str(refused.value) == (
        "c.toml: subscribers[2].cron: day of week '8' in '0 7 * * 8': "
        "8 is out of range 0-7 (0 and 7 are Sunday; or sun-sat)"
    )
    source = {"name": "x", "kind": "directory", "path": "/x", "cron": "5/10 * * * *"}
    with pytest.raises(ConfigError, match=re.escape("c.toml: sources[0].cron: minute '5/10' in '5/10 * * * *'")):
        config.validate({"sources": [source]}, "c.toml")
    assert config.validate({"subscribers": [{"email": "a@x.org", "cron": "0 7 * * 7"}]}, "c.toml")


# --- daylight saving time ----------------------------------------------------------------
# cron's rule (Vixie cron, cronie): a job whose minute or hour field starts with '*' follows the
# wall clock (a skipped time does not run, a repeated one runs twice); any other job runs once
# for each of its times (a skipped time runs when the gap ends, a repeated one the first time).


def test_a_daily_digest_fires_once_on_both_dst_days() -> None:
    # Europe/Berlin 2026: 02:00 -> 03:00 on 29 March, 03:00 -> 02:00 on 25 October.
    assert fires_on("30 2 * * *", "Europe/Berlin", "2026-03-28") == ["02:30+0100"]
    assert fires_on("30 2 * * *", "Europe/Berlin", "2026-03-29") == ["03:00+0200"]  # the gap's end
    assert fires_on("30 2 * * *", "Europe/Berlin", "2026-10-25") == ["02:30+0200"]  # not again at +0100
    assert fires_on("30 2 * * *", "Europe/Berlin", "2026-10-26") == ["02:30+0100"]
    assert fires_on("30 2 * * *", "America/New_York", "2026-03-08") == ["03:00-0400"]
    assert fires_on("30 1 * * *", "America/New_York", "2026-11-01") == ["01:30-0400"]


def test_wall_clock_jobs_skip_the_gap_and_repeat_the_fold() -> None:
    spring = fires_on("0 * * * *", "Europe/Berlin", "2026-03-29")
    assert len(spring) == 23 and spring[1:3] == ["01:00+0100", "03:00+0200"]
    autumn = fires_on("0 * * * *", "Europe/Berlin", "2026-10-25")
    assert len(autumn) == 25 and autumn[2:5] == ["02:00+0200", "02:00+0100", "03:00+0100"]
    # '*/20' in the minute field makes a wall-clock job even with a fixed hour.
    assert fires_on("*/20 2 * * *", "Europe/Berlin", "2026-03-29") == []
    assert fires_on("*/20 2 * * *", "Europe/Berlin", "2026-10-25") == [
        "02:00+0200", "02:20+0200", "02:40+0200", "02:00+0100", "02:20+0100", "02:40+0100",
    ]  # fmt: skip


def test_only_a_leading_star_makes_a_wall_clock_job() -> None:
    # 0-23 covers every hour but is not '*': its 02:30 is a fixed time and runs when the gap ends.
    assert fires_on("30 0-23 * * *", "Europe/Berlin", "2026-03-29")[1:4] == ["01:30+0100", "03:00+0200", "03:30+0200"]
    assert fires_on("30 * * * *", "Europe/Berlin", "2026-03-29")[1:3] == ["01:30+0100", "03:30+0200"]
    assert fires_on("30 0-23 * * *", "Europe/Berlin", "2026-10-25")[2:4] == ["02:30+0200", "03:30+0100"]


def test_half_hour_and_midnight_changes() -> None:
    # Lord Howe: 02:00 -> 02:30 on 4 October 2026, 02:00 -> 01:30 on 5 April 2026.
    assert fires_on("15 2 * * *", "Australia/Lord_Howe", "2026-10-04") == ["02:30+1100"]
    assert fires_on("40 1 * * *", "Australia/Lord_Howe", "2026-04-05") == ["01:40+1100"]
    assert fires_on("*/20 1 * * *", "Australia/Lord_Howe", "2026-04-05") == [
        "01:00+1100", "01:20+1100", "01:40+1100", "01:40+1030",
    ]  # fmt: skip
    # Santiago: 00:00 -> 01:00 on 6 September 2026, 00:00 -> 23:00 the day before 5 April 2026.
    assert fires_on("0 0 * * *", "America/Santiago", "2026-09-06") == ["01:00-0300"]
    assert fires_on("30 23 * * *", "America/Santiago", "2026-04-04") == ["23:30-0300"]
    assert fires_on("30 23 * * 0", "America/Santiago", "2026-09-05") == []  # a Saturday
    assert fires_on("30 * * * *", "Asia/Kolkata", "2026-03-29")[:2] == ["00:30+0530", "01:30+0530"]


def test_periods_across_the_fall_back_hour() -> None:
    hourly = cron_trigger("0 * * * *", "Europe/Berlin")
    at = dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second time round
    assert latest_fire(hourly, at) == dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert hourly.get_next_fire_time(None, at) == dt.datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    daily = cron_trigger("30 2 * * *", "Europe/Berlin")
    assert latest_fire(daily, at) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


# --- croniter, where it reads crontab(5) differently ---------------------------------------
# croniter is the property test's second opinion below. These are the places it departs from
# crontab(5) (croniter 7); we follow crontab(5), and the property test stays out of them.


@pytest.mark.parametrize(
    ("expression", "zone", "day", "crontab", "croniter_says"),
    [
        # A range of one value: croniter reads 15-15 as '*' (every minute).
        ("15-15 3 * * 1", "UTC", "2026-01-05", ["03:15+0000"], ["03:00+0000", "03:01+0000"]),
        # `sun` ends a range as 0 in crontab(5), so 0-sun is Sunday only; croniter reads 7 (every day).
        ("0 7 * * 0-sun", "UTC", "2026-01-05", [], ["07:00+0000"]),  # a Monday
        # A day field with '*' after its first item is restricted in crontab(5), so the OR rule
        # holds (here: every day); croniter calls it unrestricted (AND: Mondays only).
        ("0 7 7-31,* * 1", "UTC", "2026-01-07", ["07:00+0000"], []),  # a Wednesday
        # A fixed time repeated by a fall-back: croniter runs it twice.
        ("30 2 * * *", "Europe/Berlin", "2026-10-25", ["02:30+0200"], ["02:30+0200", "02:30+0100"]),
        # A wall-clock job's time skipped by a spring-forward: croniter runs it at the gap's end.
        ("*/20 2 * * *", "Europe/Berlin", "2026-03-29", [], ["03:00+0200"]),
        # An hour list covering every hour is no '*': crontab(5) runs its 02:30 at the gap's end, croniter skips it.
        ("30 0-23 * * *", "Europe/Berlin", "2026-03-29",
         ["00:30+0100", "01:30+0100", "03:00+0200"] + [f"{hour:02}:30+0200" for hour in range(3, 24)],
         ["00:30+0100", "01:30+0100", "03:30+0200"]),
        # A wall-clock job on days chosen by its day fields: croniter misses the repeated hour.
        ("*/20 2 * * 0", "Europe/Berlin", "2026-10-25",
         ["02:00+0200", "02:20+0200", "02:40+0200", "02:00+0100", "02:20+0100", "02:40+0100"],
         ["02:00+0200", "02:20+0200", "02:40+0200"]),
        ("*/30 23 1 * *", "America/Santiago", "2028-04-01",
         ["23:00-0300", "23:30-0300", "23:00-0400", "23:30-0400"], ["23:00-0300", "23:30-0300"]),
        # A half-hour fall-back: croniter misses the second 01:40.
        ("*/20 1 * * *", "Australia/Lord_Howe", "2026-04-05",
         ["01:00+1100", "01:20+1100", "01:40+1100", "01:40+1030"], ["01:00+1100", "01:20+1100", "01:40+1100"]),
    ],
)  # fmt: skip
def test_where_croniter_departs_from_crontab(
    expression: str, zone: str, day: str, crontab: list[str], croniter_says: list[str]
) -> None:
    assert fires_on(expression, zone, day) == crontab
    # croniter's own answer, so that the property test's exclusions stay justified: when this
    # fails, croniter has changed, and the property test can compare more.
    tz = ZoneInfo(zone)
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=tz)
    answers = croniter(expression, midnight - dt.timedelta(seconds=30), implement_cron_bug=True)
    theirs = []
    for _ in range(10):
        fire = answers.get_next(dt.datetime).astimezone(tz)
        if fire.date() != midnight.date():
            break
        theirs.append(f"{fire:%H:%M%z}")
    assert theirs[: len(croniter_says) or None] == croniter_says


# --- the same answers as croniter ----------------------------------------------------------
# Expressions, zones and starting points are generated; our fire times and croniter's must be
# the same instants, FIRES in a row. One test draws any expression from any start; the other
# lands on a clock change: it starts a few hours before one and its expression has times in the
# hours skipped or repeated, on that day.
# croniter runs with implement_cron_bug=True, which is Vixie cron's day rule (a day field
# starting with '*' is unrestricted; croniter's default calls '*/2' a restriction). Where croniter
# departs from crontab(5) (the examples above) the generator does not write such expressions
# (no a-a range, no `sun` ending a range, '*' only first in a day field, no hour list covering
# every hour without a leading '*'), and the DST disagreements are left out of croniter's
# answer only: a second run of a fixed time, and a wall-clock job's run at the end of a gap.
# The second runs of a wall-clock job, which croniter misses in Lord Howe's repeated half hour
# and on days chosen by the day fields, are left out on both sides there.

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
    "Europe/Dublin",
)
FIRES = 32
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRONITER_MISSES_REPEATS = {"Australia/Lord_Howe"}  # its repeated half hour starts at 01:30


@functools.cache
def transitions(zone: str) -> tuple[dt.datetime, ...]:
    """The UTC instants when `zone` changed its offset, 2024 to 2030."""
    tz, found = ZoneInfo(zone), []
    moment = dt.datetime(2024, 1, 1, tzinfo=UTC)
    while moment.year < 2031:
        later = moment + dt.timedelta(hours=12)
        if later.astimezone(tz).utcoffset() != moment.astimezone(tz).utcoffset():
            low, high = moment, later
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == later.astimezone(tz).utcoffset():
                    high = middle
                else:
                    low = middle
            found.append(high.replace(microsecond=0))
        moment = later
    return tuple(found)


def changed_wall_times(zone: str, change: dt.datetime) -> list[dt.datetime]:
    """The wall times (every 15 minutes) skipped or repeated by the clock change at `change`."""
    tz = ZoneInfo(zone)
    offsets = sorted(
        offset
        for offset in ((change - dt.timedelta(seconds=1)).astimezone(tz).utcoffset(), change.astimezone(tz).utcoffset())
        if offset is not None
    )
    wall, end = (change + offsets[0]).replace(tzinfo=None), (change + offsets[-1]).replace(tzinfo=None)
    found = []
    while wall < end:
        found.append(wall)
        wall += dt.timedelta(minutes=15)
    return found


def chance(draw: Any, percent: int) -> bool:
    """True about `percent` times in a hundred (False is the simpler answer hypothesis shrinks to)."""
    return bool(draw(st.sampled_from([False] * (100 - percent) + [True] * percent)))


@st.composite
def cron_field(
    draw: Any,
    low: int,
    high: int,
    names: tuple[str, ...] = (),
    favourites: tuple[int, ...] = (),
    day: bool = False,
    star: int = 25,
) -> tuple[str, frozenset[int]]:
    """One field as text, with the values crontab(5) gives it (worked out here, not by our parser);
    `star` is about the percentage of plain '*' fields."""
    if chance(draw, star):
        return "*", frozenset(range(low, high + 1))
    number = st.integers(low, high)
    if favourites:
        number = st.sampled_from(favourites) if chance(draw, 50) else st.sampled_from(favourites) | number

    def spell(value: int, ends_range: bool) -> str:
        name_index = value - low if names == MONTH_NAMES else value
        if (
            names
            and name_index < len(names)
            and not (ends_range and names[name_index] == "sun")
            and draw(st.booleans())
        ):
            return draw(st.sampled_from([str.lower, str.upper, str.title]))(names[name_index])
        return str(value)

    items, values = [], set()
    for index in range(draw(st.sampled_from([1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["n", "n", "n", "a-b", "a-b/n", "*/n", "*"]))
        if kind.startswith("*") and day and index > 0:
            kind = "n"
        step = draw(st.integers(1, high - low + 1)) if kind.endswith("/n") else 1
        if kind.startswith("*"):
            first, last, text = low, high, "*"
        elif kind == "n":
            first = last = draw(number)
            text = spell(first, ends_range=False)
        else:
            first, last = sorted((draw(number), draw(number)))
            if first == last:
                first, last = (first, last + 1) if last < high else (first - 1, last)
            text = f"{spell(first, ends_range=True)}-{spell(last, ends_range=True)}"
        items.append(f"{text}/{step}" if kind.endswith("/n") else text)
        values.update(range(first, last + 1, step))
    return ",".join(items), frozenset(values)


@dataclass(frozen=True)
class Case:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    wall_clock: bool  # the minute or hour field starts with '*'
    every_day: bool  # the day of month, month and day of week are all '*'
    zone: str
    start: dt.datetime


def case(zone: str, start: dt.datetime, fields: list[tuple[str, frozenset[int]]]) -> Case:
    (minute, minutes), (hour, hours) = fields[:2]
    assume(hour.startswith("*") or len(hours) < 24)
    return Case(
        " ".join(text for text, _ in fields),
        minutes,
        hours,
        minute.startswith("*") or hour.startswith("*"),
        all(text == "*" for text, _ in fields[2:]),
        zone,
        start + dt.timedelta(seconds=30),  # between minutes: "after" and "at or after" agree
    )


@st.composite
def any_cases(draw: Any) -> Case:
    zone = draw(st.sampled_from(ZONES))
    start = dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=draw(st.integers(0, 7 * 365 * 1440)))
    fields = [
        draw(cron_field(0, 59, star=10)),
        draw(cron_field(0, 23, star=20)),
        draw(cron_field(1, 31, day=True, star=50)),
        draw(cron_field(1, 12, MONTH_NAMES, star=60)),
        draw(cron_field(0, 7, WEEKDAY_NAMES, day=True, star=50)),
    ]
    return case(zone, start, fields)


@st.composite
def clock_change_cases(draw: Any) -> Case:
    zone = draw(st.sampled_from([zone for zone in ZONES if transitions(zone)]))
    change = draw(st.sampled_from(transitions(zone)))
    changed = draw(st.sampled_from(changed_wall_times(zone, change)))
    minute = draw(cron_field(0, 59, favourites=(0, 15, 30, 45, changed.minute), star=10))
    hour = draw(cron_field(0, 23, favourites=(changed.hour,), star=10))
    if changed.hour not in hour[1]:
        hour = (f"{hour[0]},{changed.hour}", hour[1] | {changed.hour})
    day = ("*", frozenset()) if chance(draw, 50) else (str(changed.day), frozenset({changed.day}))
    weekday = str(changed.isoweekday() % 7) if day[0] != "*" and chance(draw, 50) else "*"
    month = "*" if chance(draw, 50) else MONTH_NAMES[changed.month - 1]
    before = dt.timedelta(minutes=draw(st.integers(1, 6 * 60)))
    return case(zone, change - before, [minute, hour, day, (month, frozenset()), (weekday, frozenset())])


def repeated(zone: ZoneInfo, moment: dt.datetime) -> bool:
    """Whether `moment` is the second time round of a wall time repeated by a fall-back."""
    local = moment.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def assert_same_fires_as_croniter(case: Case) -> None:
    zone = ZoneInfo(case.zone)
    try:
        trigger = cron_trigger(case.expression, case.zone)
    except ValueError as refused:  # the 31st in February only, say
        assert "never fires" in str(refused)
        assume(False)
        return

    def compared(moment: dt.datetime) -> bool:
        croniter_misses = case.zone in CRONITER_MISSES_REPEATS or not case.every_day
        return not (case.wall_clock and croniter_misses and repeated(zone, moment))

    ours: list[dt.datetime] = []
    fire = trigger.get_next_fire_time(None, case.start)
    while fire is not None and len(ours) < FIRES:
        if compared(fire):
            ours.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire)

    theirs: list[dt.datetime] = []
    answers = croniter(case.expression, case.start.astimezone(zone), implement_cron_bug=True)
    for _ in range(FIRES + 200):
        moment = answers.get_next(dt.datetime).astimezone(UTC)
        local = moment.astimezone(zone)
        if not compared(moment):
            continue
        if case.wall_clock and (local.minute not in case.minutes or local.hour not in case.hours):
            continue  # croniter ran a skipped wall time at the end of the gap
        if not case.wall_clock and repeated(zone, moment):
            continue  # croniter ran a repeated fixed time twice
        theirs.append(moment)
        if len(theirs) == FIRES:
            break
    assert ours == theirs


@settings(max_examples=120)
@given(any_cases())
def test_fire_times_agree_with_croniter(case: Case) -> None:
    assert_same_fires_as_croniter(case)


@settings(max_examples=180)
@given(clock_change_cases())
def test_fire_times_agree_with_croniter_across_clock_changes(case: Case) -> None:
    assert_same_fires_as_croniter(case)


# --- the daemon and the command line -------------------------------------------------------


def test_the_trigger_is_an_apscheduler_trigger() -> None:
    """Once the daemon's module is loaded (it registers the trigger with APScheduler; crontab.py
    itself imports no APScheduler, for `status`'s start-up), a job runs on it."""
    from paperdigest.service import scheduler as _daemon  # noqa: F401, PLC0415  registers CrontabTrigger

    trigger = cron_trigger("30 8 * * 1", "America/New_York")
    assert isinstance(trigger, BaseTrigger)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        job = scheduler.add_job(print, trigger, id="digest")
        local = job.next_run_time.astimezone(ZoneInfo("America/New_York"))
        assert (DAY_NAMES[local.weekday()], f"{local:%H:%M}") == ("Mon", "08:30")
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize(
    ("now", "monday"),
    [
        ("2026-03-04T12:00:00+00:00", "2026-03-09"),  # a Wednesday; New York moves to EDT on the 8th
        ("2026-03-09T03:00:00+00:00", "2026-03-09"),  # Monday in UTC, still Sunday 23:00 in New York
        ("2026-03-09T13:00:00+00:00", "2026-03-16"),  # Monday 09:00 in New York: this week's has gone
        ("2026-11-01T12:00:00+00:00", "2026-11-02"),  # a Sunday; back to EST that morning
    ],
)
def test_status_shows_the_monday_digest_on_a_monday(
    cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, now: str, monday: str
) -> None:
    monkeypatch.setenv("PAPERDIGEST_NOW", now)
    monkeypatch.setenv("PAPERDIGEST_SMTP_PASSWORD", "x")  # its password file is a systemd credential
    example = ROOT / "deploy" / "config.example.toml"
    assert 'cron = "30 8 * * 1"                   # Mondays at 08:30' in example.read_text()
    assert cli("--db", db_url, "db", "upgrade").code == 0  # `status` looks at a store, and creates none
    result = cli("--config", str(example), "--db", db_url, "status", "--json")
    assert result.code == 0, result.err
    runs = {run["job"]: dt.datetime.fromisoformat(run["at"]) for run in result.json_lines()[0]["next_runs"]}
    grace = runs["digest:grace@example.org"].astimezone(ZoneInfo("America/New_York"))
    assert (grace.date().isoformat(), DAY_NAMES[grace.weekday()], f"{grace:%H:%M}") == (monday, "Mon", "08:30")
    ada = runs["digest:ada@example.org"].astimezone(ZoneInfo("Europe/Berlin"))  # "every day at 07:00"
    assert f"{ada:%H:%M}" == "07:00" and ada - dt.datetime.fromisoformat(now) <= dt.timedelta(days=1)
