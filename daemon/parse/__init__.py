"""Dump bytes -> Listing. Detects the format (text layouts, API JSON, HTML page) by content."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from paperdigest import clock
from paperdigest.errors import EmptyListingError, ParseError
from paperdigest.ingest.identity import title_key
from paperdigest.model import Entry, Listing, RawDump, short_entry_row
from paperdigest.parse.api_json import parse_api_json
from paperdigest.parse.dates import DateValueError, date_from_filename, latest_on_or_before, mtime_date
from paperdigest.parse.decode import decode_dump
from paperdigest.parse.html import parse_html
from paperdigest.parse.text import DateParts, TextEntry, header_date, parse_text

__all__ = ["capture_date", "content_hash", "parse_dump"]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def detect_format(text: str) -> str:
    head = text.lstrip("\ufeff \t\n")[:1]
    if head in ("[", "{"):
        return "json"
    if head == "<":
        return "html"
    return "text"


def capture_date(
    source: str, mtime: float | None, as_of: dt.date | None = None, header: DateParts | None = None
) -> dt.date:
    """--as-of, else a YYYY-MM-DD in the name, else the header date (year from the mtime), else the mtime."""
    if as_of is not None:
        return as_of
    from_name = date_from_filename(source)
    if from_name is not None:
        return from_name
    reference = mtime_date(mtime) or clock.today()
    if header is not None:
        try:
            return latest_on_or_before(header.month, header.day, reference)
        except DateValueError:
            raise ParseError(source, header.line, "the header date names no real day") from None
    return reference


def parse_dump(raw: RawDump, as_of: dt.date | None = None, *, rows: bool = False) -> Listing:
    """The dump's listing. With `rows` (backfill's parse, for its writer alone), a text dump's
    entries are model.EntryRows, not Entry objects: the same values, made in a twelfth of the time."""
    text = decode_dump(raw.data, raw.source)
    kind = detect_format(text)
    if kind == "json":
        entries = parse_api_json(text, raw.source)
        capture = capture_date(raw.source, raw.mtime, as_of)
        layout = "api-json"
    elif kind == "html":
        entries = parse_html(text, raw.source)
        capture = capture_date(raw.source, raw.mtime, as_of)
        layout = "html"
    else:
        listing = parse_text(text, raw.source)
        capture = capture_date(raw.source, raw.mtime, as_of, listing.header_date)
        entries = _resolved(listing.entries, capture, raw.source, short_entry_row if rows else Entry)
        layout = listing.layout
    if not entries:
        raise EmptyListingError(raw.source, None, "the listing holds no entries")
    keys = tuple([title_key(entry.title) for entry in entries])
    return Listing(raw.source, capture, layout, content_hash(raw.data), tuple(entries), keys)


def _resolved(entries: list[TextEntry], capture: dt.date, source: str, make: Callable[..., Any] = Entry) -> list[Any]:
    """The entries of a text dump (made by `make`: Entry, or model.short_entry_row), their dates
    made whole. A dump's entries share a few dates: each distinct one is worked out once."""
    days: dict[tuple[int, int, int | None], dt.date] = {}
    resolved = []
    for position, entry in enumerate(entries, 1):
        published = None
        if entry.date is not None:
            when = entry.date.month, entry.date.day, entry.date.year
            published = days.get(when)
            if published is None:
                published = days[when] = _day(entry.date, capture, source)
        # Positional, in Entry's field order (position, the Listed fields, line): a keyword call
        # costs a fifth more, by the hundred thousand.
        title, abstract, authors, org, upvotes = entry.title, entry.abstract, entry.authors, entry.org, entry.upvotes
        resolved.append(make(position, title, abstract, authors, org, published, upvotes, None, entry.line))
    return resolved


def _day(date: DateParts, capture: dt.date, source: str) -> dt.date:
    try:
        if date.year is not None:
            return dt.date(date.year, date.month, date.day)
        return latest_on_or_before(date.month, date.day, capture)
    except (ValueError, DateValueError):
        raise ParseError(source, date.line, "the date line names no real day") from None


def header_of(raw: RawDump) -> DateParts | None:
    """The header date of a text dump, from its first bytes (for ordering a backfill); None otherwise."""
    head = raw.data[:4096]
    try:
        text = decode_dump(head.rsplit(b"\n", 1)[0] or head, raw.source)
    except ParseError:
        return None
    if detect_format(text) != "text":
        return None
    return header_date(text)
