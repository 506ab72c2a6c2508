"""The three text layouts of a Daily Papers capture, auto-detected.

1. full: header, then blocks separated by blank lines: title, abstract, and an optional
   meta block of three lines ("• N authors" or an organisation line, "·", a date line).
2. pairs: the same blocks with no meta block at all.
3. dense: no blank lines; one title line, one abstract line; "Subscribe" may be glued to
   the first title.

Entries are read by position, never by what a line looks like, so a title such as
"Mar 8" or "A · B" stays a title. Only the header is recognised by its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paperdigest.errors import ParseError
from paperdigest.ingest.identity import fold_space
from paperdigest.parse.dates import DATE_LINE, month_number

_HEADER = [
    re.compile(p, re.I)
    for p in (
        r"^new$",
        r"^get trending papers in your email inbox( once a day)?!?$",
        r"^subscribe$",
        r"^daily papers$",
        r"^by ?ak and the research community$",
    )
]
_SUBSCRIBE_GLUED = re.compile(r"^Subscribe(?=\S)")
_AUTHORS = re.compile(r"^[•·*\-]?\s*(\d{1,6})\s+authors?$", re.I)
_META_DOT = "·"
MAX_TITLE = 1000
_NOT_A_LISTING = (
    "not a paper listing: expected a Daily Papers header ('Daily Papers', 'Subscribe', ...) "
    "or entries with a meta block ('• N authors', '·', date)"
)


@dataclass(slots=True)
class DateParts:
    month: int
    day: int
    year: int | None
    line: int


@dataclass(slots=True)
class TextEntry:
    line: int
    title: str
    abstract: str | None
    authors: int | None
    org: str | None
    date: DateParts | None
    upvotes: int | None


@dataclass(slots=True)
class TextListing:
    layout: str
    header_date: DateParts | None
    entries: list[TextEntry]


@dataclass(slots=True)
class _Line:
    number: int
    text: str


def _is_header(text: str) -> bool:
    return any(p.match(text) for p in _HEADER)


def parse_text(text: str, source: str) -> TextListing:
    lines = [_Line(i, raw.strip()) for i, raw in enumerate(text.split("\n"), 1)]
    body_start, header_date, saw_header = _read_header(lines)
    body = lines[body_start:]
    if body and _SUBSCRIBE_GLUED.match(body[0].text) and saw_header:
        body[0] = _Line(body[0].number, body[0].text[len("Subscribe") :])
    while body and not body[-1].text:
        body.pop()
    if not body:
        raise ParseError(source, len(lines), "no entries after the listing header")
    dense = all(line.text for line in body)
    reader = _EntryReader(source, body, dense)
    try:
        entries = reader.read_all()
    except ParseError:
        if saw_header:
            raise
        entries = []  # no header and no structure: say what the file is not, below
    if not saw_header and not reader.saw_meta:
        raise ParseError(source, 1, _NOT_A_LISTING)
    layout = "dense" if dense else ("full" if reader.saw_meta else "pairs")
    return TextListing(layout, header_date, entries)


def header_date(text: str) -> DateParts | None:
    """Only the header's date (a dump's head is enough): to order dumps before parsing them."""
    lines = [_Line(i, raw.strip()) for i, raw in enumerate(text.split("\n"), 1)]
    return _read_header(lines)[1]


def _read_header(lines: list[_Line]) -> tuple[int, DateParts | None, bool]:
    """Skip the header. Returns (index of the first body line, header date, saw a header line)."""
    header_date: DateParts | None = None
    saw_header = False
    index = 0
    for index, line in enumerate(lines):
        if not line.text:
            continue
        if _is_header(line.text):
            saw_header = True
            continue
        if header_date is None and saw_header:
            match = DATE_LINE.match(line.text)
            if match and not match["year"] and not match["upvotes"]:
                header_date = DateParts(month_number(match["month"]), int(match["day"]), None, line.number)
                continue
        return index, header_date, saw_header
    return len(lines), header_date, saw_header


class _EntryReader:
    """Reads entries by position from the body lines of a text dump."""

    def __init__(self, source: str, body: list[_Line], dense: bool) -> None:
        self.source = source
        self.dense = dense
        self.saw_meta = False
        # Units: in block layouts each block of consecutive lines; in dense, each line.
        self.units: list[list[_Line]] = _blocks(body) if not dense else [[line] for line in body]
        self.pos = 0

    def fail(self, line: int, reason: str) -> ParseError:
        return ParseError(self.source, line, reason)

    def read_all(self) -> list[TextEntry]:
        entries = []
        while self.pos < len(self.units):
            entries.append(self._entry())
        return entries

    def _single(self, what: str) -> _Line:
        unit = self.units[self.pos]
        if len(unit) != 1:
            if _looks_like_meta(unit):
                raise self.fail(unit[0].number, f"expected {what}, found a meta block ('• N authors', '·', date)")
            raise self.fail(
                unit[0].number,
                f"expected {what} on one line, found a block of {len(unit)} lines "
                "(is a blank line missing between entries?)",
            )
        self.pos += 1
        return unit[0]

    def _entry(self) -> TextEntry:
        title = self._single("a title")
        if len(title.text) > MAX_TITLE:
            raise self.fail(title.number, f"expected a title, found a line of {len(title.text)} characters")
        meta = self._meta()
        abstract: str | None = None
        if meta is None:
            if self.pos >= len(self.units):
                raise self.fail(title.number, f"dump cut off: entry {fold_space(title.text)[:60]!r} has no abstract")
            abstract = fold_space(self._single("an abstract").text)
            meta = self._meta()
        authors, org, date, upvotes = meta if meta else (None, None, None, None)
        return TextEntry(title.number, fold_space(title.text), abstract, authors, org, date, upvotes)

    def _meta_lines(self) -> list[_Line] | None:
        """The next three lines if they form a meta block, else None (nothing consumed)."""
        if self.pos >= len(self.units):
            return None
        if not self.dense:
            unit = self.units[self.pos]
            if len(unit) == 3 and unit[1].text == _META_DOT:
                self.pos += 1
                return unit
            if _looks_like_meta(unit) or (len(unit) == 2 and unit[1].text == _META_DOT):
                raise self.fail(
                    unit[0].number,
                    "incomplete meta block: expected three lines ('• N authors' or an organisation, '·', a date)",
                )
            return None
        window = [u[0] for u in self.units[self.pos : self.pos + 3]]
        if len(window) >= 2 and window[1].text == _META_DOT:
            if len(window) < 3:
                raise self.fail(window[0].number, "dump cut off in a meta block: expected a date line after '·'")
            self.pos += 3
            return window
        return None

    def _meta(self) -> tuple[int | None, str | None, DateParts, int] | None:
        lines = self._meta_lines()
        if lines is None:
            return None
        self.saw_meta = True
        who, _, when = lines
        match = DATE_LINE.match(when.text)
        if match is None:
            raise self.fail(
                when.number, f"expected a date line such as 'Mar 20 2' or 'Sep 30, 2024', found {when.text[:60]!r}"
            )
        year = int(match["year"]) if match["year"] else None
        date = DateParts(month_number(match["month"]), int(match["day"]), year, when.number)
        upvotes = int(match["upvotes"]) if match["upvotes"] else 0
        authors_match = _AUTHORS.match(who.text)
        if authors_match:
            return int(authors_match[1]), None, date, upvotes
        if not who.text:
            raise self.fail(who.number, "expected '• N authors' or an organisation line")
        return None, _org_name(who.text), date, upvotes


def _org_name(line: str) -> str:
    """'amazon Amazon' -> 'Amazon'; 'facebook AI at Meta' -> 'AI at Meta' (slug, then full name)."""
    slug, _, full = fold_space(line).partition(" ")
    return full or slug


def _looks_like_meta(unit: list[_Line]) -> bool:
    return bool(_AUTHORS.match(unit[0].text)) or any(line.text == _META_DOT for line in unit)


def _blocks(lines: list[_Line]) -> list[list[_Line]]:
    blocks: list[list[_Line]] = []
    current: list[_Line] = []
    for line in lines:
        if line.text:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks
