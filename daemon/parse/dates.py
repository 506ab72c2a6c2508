"""Dates in listings: 'Mar 20', 'Sep 30, 2024', the capture date, and the year inference."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePath

MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}

_MONTH = r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
# "Mar 20", "Mar 20 2" (2 upvotes), "Sep 30, 2024", "Sep 30, 2024 2". ASCII only: with Unicode
# case folding "ſep" (long s) would match "Sep", and \d would match other scripts' digits.
DATE_LINE = re.compile(
    rf"^{_MONTH} (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?: (?P<upvotes>\d{{1,9}}))?$", re.I | re.ASCII
)
_FILE_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


class DateValueError(ValueError):
    """A date line that matches the pattern but names no real day."""


def latest_on_or_before(month: int, day: int, ref: dt.date) -> dt.date:
    """The latest `month day` on or before `ref` ('Dec 29' seen 2026-01-02 is 2025-12-29)."""
    for year in range(ref.year, ref.year - 9, -1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue  # Feb 29 in a common year
        if candidate <= ref:
            return candidate
    raise DateValueError(f"no such day: month {month} day {day}")


def month_number(name: str) -> int:
    return MONTHS[name[:3].lower()]


def date_from_filename(name: str) -> dt.date | None:
    """A YYYY-MM-DD in a file name, if it holds a real date."""
    for match in _FILE_DATE.finditer(PurePath(name).name):
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


def mtime_date(mtime: float | None) -> dt.date | None:
    """The UTC day of a modification time; None when there is none, or it is no day of years 1-9999."""
    if mtime is None:
        return None
    try:
        return dt.datetime.fromtimestamp(mtime, dt.UTC).date()
    except (OverflowError, OSError, ValueError):
        return None
