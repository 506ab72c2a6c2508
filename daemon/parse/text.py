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
from itertools import compress, islice
from operator import not_

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


def _is_header(text: str) -> bool:
    return any(p.match(text) for p in _HEADER)


# The lines of a dump are kept as plain strings, stripped, in one list: line N is lines[N - 1].
# A unit (a block, or in dense a line) is its first line's number and its lines' texts: the
# lines of a unit are consecutive (dense has no blank lines), so every line's number is known.
# A text dump of 200 entries has some 1,400 lines: one small object per line cost a third of
# the parse.
_Unit = tuple[int, list[str]]


def parse_text(text: str, source: str) -> TextListing:
    lines = list(map(str.strip, text.split("\n")))
    body_start, header_date, saw_header = _read_header(lines)
    end = len(lines)
    if body_start < end and saw_header and _SUBSCRIBE_GLUED.match(lines[body_start]):
        lines[body_start] = lines[body_start][len("Subscribe") :]
    while end > body_start and not lines[end - 1]:
        end -= 1
    if end == body_start:
        raise ParseError(source, len(lines), "no entries after the listing header")
    dense = all(lines[body_start:end])
    units = [(i + 1, [lines[i]]) for i in range(body_start, end)] if dense else _blocks(lines, body_start, end)
    reader = _EntryReader(source, units, dense)
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
    return _read_header([raw.strip() for raw in text.split("\n")])[1]


def _read_header(lines: list[str]) -> tuple[int, DateParts | None, bool]:
    """Skip the header. Returns (index of the first body line, header date, saw a header line)."""
    header_date: DateParts | None = None
    saw_header = False
    index = 0
    for index, line in enumerate(lines):
        if not line:
            continue
        if _is_header(line):
            saw_header = True
            continue
        if header_date is None and saw_header:
            match = DATE_LINE.match(line)
            if match and not match["year"] and not match["upvotes"]:
                header_date = DateParts(month_number(match["month"]), int(match["day"]), None, index + 1)
                continue
        return index, header_date, saw_header
    return len(lines), header_date, saw_header


class _EntryReader:
    """Reads entries by position from the body units of a text dump."""

    def __init__(self, source: str, units: list[_Unit], dense: bool) -> None:
        self.source = source
        self.dense = dense
        self.saw_meta = False
        # Units: in block layouts each block of consecutive lines; in dense, each line.
        self.units = units
        self.pos = 0

    def fail(self, line: int, reason: str) -> ParseError:
        return ParseError(self.source, line, reason)

    def read_all(self) -> list[TextEntry]:
        """Every entry. In the block layouts the usual one (a one-line title, a one-line abstract,
        a meta block) is read inline; any other shape goes through _entry, which reads it or says
        what is wrong with it (the inline reading takes only what _entry would read the same way)."""
        entries = []
        units = self.units
        inline_before = len(units) - 2 if not self.dense else 0
        # A dump's meta blocks repeat their first line ('• 26 authors', 'amazon Amazon'): each
        # distinct one is read once (48 distinct in the 200 of a benchmark dump looked at).
        whos: dict[str, tuple[int | None, str | None]] = {}
        while self.pos < len(units):
            pos = self.pos
            if pos < inline_before:
                (number, title), (_, abstract), (meta_at, meta) = units[pos], units[pos + 1], units[pos + 2]
                if (
                    len(title) == 1
                    and len(abstract) == 1
                    and len(meta) == 3
                    and meta[1] == _META_DOT
                    and len(title[0]) <= MAX_TITLE
                    and abstract[0] != _META_DOT
                    and not _AUTHORS.match(abstract[0])
                ):
                    self.pos = pos + 3
                    self.saw_meta = True
                    # _meta_of, inlined, its first line's reading kept per distinct line
                    who, _, when = meta
                    match = DATE_LINE.match(when)
                    known = whos.get(who)
                    if match is None or known is None:
                        authors, org, date, upvotes = self._meta_of(meta_at, meta)
                        whos[who] = authors, org
                    else:
                        authors, org = known
                        month, day, year, points = match.group("month", "day", "year", "upvotes")
                        date = DateParts(month_number(month), int(day), int(year) if year else None, meta_at + 2)
                        upvotes = int(points) if points else 0
                    # fold_space, inlined; a line (stripped) that is ASCII, printable and has no
                    # double space is its own fold: three scans in C, half the time of the fold
                    text = title[0]
                    if not (text.isascii() and text.isprintable() and "  " not in text):
                        text = " ".join(text.split())
                    summary = abstract[0]
                    if not (summary.isascii() and summary.isprintable() and "  " not in summary):
                        summary = " ".join(summary.split())
                    entries.append(TextEntry(number, text, summary, authors, org, date, upvotes))
                    continue
            entries.append(self._entry())
        return entries

    def _single(self, what: str) -> tuple[int, str]:
        number, texts = self.units[self.pos]
        if len(texts) != 1:
            inside = _meta_inside(texts)
            if inside is not None:  # title, abstract and meta block with no blank lines between them
                raise self.fail(
                    number,
                    f"expected {what} on one line, found a block of {len(texts)} lines with a meta block on line "
                    f"{number + inside} (put a blank line between the title, the abstract and the meta block)",
                )
            if _looks_like_meta(texts):
                raise self.fail(number, f"expected {what}, found a meta block ('• N authors', '·', date)")
            raise self.fail(
                number,
                f"expected {what} on one line, found a block of {len(texts)} lines "
                "(is a blank line missing between entries?)",
            )
        self.pos += 1
        return number, texts[0]

    def _entry(self) -> TextEntry:
        number, title = self._single("a title")
        if len(title) > MAX_TITLE:
            raise self.fail(number, f"expected a title, found a line of {len(title)} characters")
        meta = self._meta()
        abstract: str | None = None
        if meta is None:
            if self.pos >= len(self.units):
                raise self.fail(number, f"dump cut off: entry {fold_space(title)[:60]!r} has no abstract")
            abstract = " ".join(self._single("an abstract")[1].split())  # fold_space, inlined
            meta = self._meta()
        authors, org, date, upvotes = meta if meta else (None, None, None, None)
        return TextEntry(number, " ".join(title.split()), abstract, authors, org, date, upvotes)

    def _meta_lines(self) -> _Unit | None:
        """The next three lines if they form a meta block, else None (nothing consumed)."""
        if self.pos >= len(self.units):
            return None
        if not self.dense:
            number, texts = unit = self.units[self.pos]
            if len(texts) == 3 and texts[1] == _META_DOT:
                self.pos += 1
                return unit
            if _looks_like_meta(texts) or (len(texts) == 2 and texts[1] == _META_DOT):
                raise self.fail(
                    number,
                    "incomplete meta block: expected three lines ('• N authors' or an organisation, '·', a date)",
                )
            return None
        window = self.units[self.pos : self.pos + 3]
        if len(window) >= 2 and window[1][1][0] == _META_DOT:
            if len(window) < 3:
                raise self.fail(window[0][0], "dump cut off in a meta block: expected a date line after '·'")
            self.pos += 3
            return window[0][0], [text for _, (text,) in window]
        return None

    def _meta(self) -> tuple[int | None, str | None, DateParts, int] | None:
        lines = self._meta_lines()
        if lines is None:
            return None
        self.saw_meta = True
        return self._meta_of(*lines)

    def _meta_of(self, number: int, lines: list[str]) -> tuple[int | None, str | None, DateParts, int]:
        """The fields of a meta block on lines number, number + 1 and number + 2."""
        who, _, when = lines
        match = DATE_LINE.match(when)
        if match is None:
            raise self.fail(
                number + 2, f"expected a date line such as 'Mar 20 2' or 'Sep 30, 2024', found {when[:60]!r}"
            )
        month, day, year, upvotes = match.group("month", "day", "year", "upvotes")
        date = DateParts(month_number(month), int(day), int(year) if year else None, number + 2)
        authors_match = _AUTHORS.match(who)
        if authors_match:
            return int(authors_match[1]), None, date, int(upvotes) if upvotes else 0
        if not who:
            raise self.fail(number, "expected '• N authors' or an organisation line")
        return None, _org_name(who), date, int(upvotes) if upvotes else 0


def _org_name(line: str) -> str:
    """'amazon Amazon' -> 'Amazon'; 'facebook AI at Meta' -> 'AI at Meta' (slug, then full name)."""
    slug, _, full = fold_space(line).partition(" ")
    return full or slug


def _looks_like_meta(texts: list[str]) -> bool:
    return bool(_AUTHORS.match(texts[0])) or _META_DOT in texts


def _meta_inside(texts: list[str]) -> int | None:
    """Where a meta block starts inside a block that begins with other lines (its index), or None."""
    for index in range(1, len(texts) - 1):
        if texts[index + 1] == _META_DOT:
            return index
    return None


def _blocks(lines: list[str], start: int, end: int) -> list[_Unit]:
    """The blocks of lines[start:end]: runs of non-blank lines, each with its first line's number."""
    blocks: list[_Unit] = []
    begin = start
    # The blank lines' indices, found in C (compress of the lines' emptiness); then the end.
    for blank in [*compress(range(start, end), map(not_, islice(lines, start, end))), end]:
        if blank > begin:
            blocks.append((begin + 1, lines[begin:blank]))
        begin = blank + 1
    return blocks
