"""The JSON of the daily-papers API: an array of items, each with a `paper` object."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from typing import Any

from paperdigest.errors import ParseError
from paperdigest.ingest.identity import fold_space, normalize_arxiv_id
from paperdigest.model import Entry


def parse_api_json(text: str, source: str) -> list[Entry]:
    return entries_from_items(load_json(text, source), source)


MAX_COUNT = 2**31 - 1  # fits every store's INTEGER
# JSON can escape half a surrogate pair (a lone "\ud800"), which is no character: it could be neither
# printed nor stored. Such a code point becomes U+FFFD, as an undecodable byte does in a browser.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_field(value: str) -> str:
    """A title, abstract or name as stored: white space folded, lone surrogates replaced."""
    return fold_space(_LONE_SURROGATE.sub("\ufffd", value))


def load_json(text: str, source: str, line: int | None = None) -> Any:
    """json.loads with every failure as a ParseError: bad syntax, absurd nesting, giant numbers.
    `line`: where the JSON sits when it is a value inside the file (an HTML attribute)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if line is None:  # the whole file: its lines are the JSON's
            raise ParseError(source, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        # An unescaped attribute: its lines ("&#10;" is one) are not the file's, so name the attribute's.
        where = f"line {exc.lineno}, column {exc.colno} of the value"
        raise ParseError(source, line, f"invalid JSON: {exc.msg} ({where})") from None
    except RecursionError:
        raise ParseError(source, line, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ParseError(source, line, f"invalid JSON: {exc}") from None


def entries_from_items(data: Any, source: str) -> list[Entry]:
    """Entries from the API's items (also used for the props embedded in HTML pages)."""
    if isinstance(data, dict) and isinstance(data.get("dailyPapers"), list):
        data = data["dailyPapers"]
    if not isinstance(data, list):
        raise ParseError(source, 1, "expected a JSON array of daily-papers items (objects with a 'paper' key)")
    entries = []
    for index, item in enumerate(data):
        entries.append(_entry(item, index, source))
    return entries


def _entry(item: Any, index: int, source: str) -> Entry:
    where = f"item [{index}]"
    if not isinstance(item, dict):
        raise ParseError(source, None, f"{where}: expected an object with a 'paper' key")
    paper = item.get("paper", item)
    if not isinstance(paper, dict):
        raise ParseError(source, None, f"{where}: 'paper' is not an object")
    title = paper.get("title") if isinstance(paper.get("title"), str) else item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ParseError(source, None, f"{where}: expected a non-empty 'paper.title' string")
    summary = paper.get("summary", item.get("summary"))
    authors = paper.get("authors")
    org = paper.get("organization") or item.get("organization")
    return Entry(
        position=index + 1,
        title=text_field(title),
        abstract=_text(summary),
        authors=len(authors) if isinstance(authors, list) else None,
        org=_org_name(org),
        published=_date(paper.get("publishedAt") or item.get("publishedAt"), "publishedAt", source, where),
        upvotes=_count(paper.get("upvotes")),
        arxiv_id=normalize_arxiv_id(paper.get("id") if isinstance(paper.get("id"), str) else None),
        author_names=_author_names(authors),
        ai_summary=_text(paper.get("ai_summary")),
        ai_keywords=_strings(paper.get("ai_keywords")),
        github_repo=web_url(paper.get("githubRepo")),
        github_stars=_count(paper.get("githubStars")),
        project_page=web_url(paper.get("projectPage")),
        comments=_count(item.get("numComments", paper.get("numComments"))),
        thumbnail=web_url(item.get("thumbnail", paper.get("thumbnail"))),
        withdrawn_at=_day(paper.get("withdrawnAt")),
    )


def _text(value: Any) -> str | None:
    """A text as stored, or None for anything that is not a non-blank string."""
    return text_field(value) if isinstance(value, str) and value.strip() else None


def _count(value: Any) -> int | None:
    """A count (upvotes, stars, comments): a whole number a store's INTEGER holds, else unknown."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


def _strings(values: Any) -> tuple[str, ...] | None:
    """A list of texts (keywords) in order, blanks and non-strings left out; None when not a list."""
    if not isinstance(values, list):
        return None
    return tuple(text_field(v) for v in values if isinstance(v, str) and v.strip())


def _author_names(authors: Any) -> tuple[str, ...] | None:
    """The authors' names in the paper's order; None when the item names none."""
    if not isinstance(authors, list):
        return None
    names = tuple(_text(a.get("name")) or "" for a in authors if isinstance(a, dict))
    return tuple(name for name in names if name) or None


MAX_URL = 2048


def web_url(value: Any) -> str | None:
    """An absolute http(s) URL as given, or None: digests link to it, so nothing else (no
    `javascript:`, no relative path, no white space or control characters) is kept."""
    if not isinstance(value, str) or len(value) > MAX_URL:
        return None
    url = value.strip()
    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _org_name(org: Any) -> str | None:
    if not isinstance(org, dict):
        return None
    for key in ("fullname", "name"):
        value = org.get(key)
        if isinstance(value, str) and value.strip():
            return text_field(value)
    return None


def _date(value: Any, key: str, source: str, where: str) -> dt.date | None:
    """The day of an ISO date or time; a value that is none is a ParseError naming the item."""
    if value is None:
        return None
    day = _day(value)
    if day is None:
        what = "not a string" if not isinstance(value, str) else f"not an ISO date: {value[:40]!r}"
        raise ParseError(source, None, f"{where}: '{key}' is {what}")
    return day


def _day(value: Any) -> dt.date | None:
    """The day of an ISO date or time, or None (for the optional dates: unknown, not an error)."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
