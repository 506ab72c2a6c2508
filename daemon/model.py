"""Frozen dataclasses passed between the stages. No database types leak out of store/."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Listed:
    """What a listing says about a paper: the one definition of a paper's fields. Entry (a
    listing's line) and Paper (the store's record) both are Listed; the diff merges these
    fields, the store keeps them, the JSON shows them. A field added later takes a default
    and `field(kw_only=True)`, so the positional fields around it stay as they are."""

    __slots__ = ()
    title: str
    abstract: str | None
    authors: int | None
    org: str | None
    published: dt.date | None
    upvotes: int | None
    arxiv_id: str | None
    # What the daily-papers API adds (issue 12); a text dump leaves them None (unknown).
    author_names: tuple[str, ...] | None = field(default=None, kw_only=True)  # in the paper's order
    ai_summary: str | None = field(default=None, kw_only=True)
    ai_keywords: tuple[str, ...] | None = field(default=None, kw_only=True)
    github_repo: str | None = field(default=None, kw_only=True)  # an http(s) URL
    github_stars: int | None = field(default=None, kw_only=True)
    project_page: str | None = field(default=None, kw_only=True)  # an http(s) URL
    comments: int | None = field(default=None, kw_only=True)
    thumbnail: str | None = field(default=None, kw_only=True)  # an http(s) URL
    withdrawn_at: dt.date | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class _Position:
    __slots__ = ()
    position: int


@dataclass(frozen=True)
class _Identity:
    __slots__ = ()
    id: int


@dataclass(frozen=True, slots=True)
class Entry(Listed, _Position):
    """One paper as a listing shows it: its position, the Listed fields, and `line`, where it
    starts in the dump (1-based)."""

    line: int | None = field(default=None, compare=False)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Entries cross from the backfill's parsing worker by the hundred: a plain tuple of
        # values pickles in a third of the time of the dataclass default (which calls fields());
        # an entry that knows none of the keyword-only fields (any text dump's) sends the rest.
        if _ENTRY_KEYWORDS(self) == _NO_KEYWORDS:
            return (_short_entry, (_ENTRY_POSITIONAL(self),))
        return (_entry, (_ENTRY_VALUES(self),))

    def to_json(self) -> dict[str, Any]:
        """The `parse` line: the position, then what the listing says of the paper in the fields
        of the contract (DESIGN.md), which every layout can carry."""
        return {"position": self.position, **{name: json_value(getattr(self, name)) for name in PARSE_FIELDS}}


LISTING_FIELDS = tuple(f.name for f in fields(Listed))
# The `parse` line keeps the contract's shape; the fields only the API gives (keyword-only, added
# later) are shown by `papers --json` once stored.
PARSE_FIELDS = tuple(f.name for f in fields(Listed) if not f.kw_only)
_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


def _builder(cls: Any) -> Any:
    """A function making `cls` from its values in field order. Keyword-only fields sit in the middle
    of that order (a subclass's own fields, such as Paper's first_seen, come after the Listed ones),
    so each value is passed by its index. Generated once (as dataclasses generates __init__): rows
    of the store and entries from the parsing worker become objects by the hundred thousand."""
    every = fields(cls)
    positional = [f"values[{i}]" for i, f in enumerate(every) if not f.kw_only]
    keywords = [f"{f.name}=values[{i}]" for i, f in enumerate(every) if f.kw_only]
    namespace: dict[str, Any] = {"cls": cls}
    exec(f"def build(values):\n    return cls({', '.join(positional + keywords)})\n", namespace)
    return namespace["build"]


_make_entry = _builder(Entry)
_ENTRY_VALUES = attrgetter(*_ENTRY_FIELDS)
_ENTRY_POSITIONAL = attrgetter(*(f.name for f in fields(Entry) if not f.kw_only))
_ENTRY_KEYWORDS = attrgetter(*(f.name for f in fields(Entry) if f.kw_only))
_NO_KEYWORDS = (None,) * sum(1 for f in fields(Entry) if f.kw_only)


# How entries cross from backfill's parsing worker (ingest.ahead) to its writer: each entry as a
# plain tuple of its values in field order (pickled and unpickled in C; rebuilding frozen Entry
# objects cost the writer about 0.5 ms a dump), read on the writer's side as an EntryRow, a
# named tuple with the Entry's field names: the diff and the topic index's upkeep read entries
# by attribute, which both give. A transport format between the two processes of one command:
# an EntryRow never leaves the backfill's writer (no to_json; equal only to the same values).
entry_values = _ENTRY_VALUES  # an entry's values in field order
_named_tuple: Any = collections.namedtuple
EntryRow: Any = _named_tuple("EntryRow", _ENTRY_FIELDS)


# The EntryRow of a text dump's entry, made by backfill's parse (ingest.ahead.parse_file), which
# only the backfill's writer reads: Entry(*positional) as a row, the keyword-only fields unknown.
# 0.3 µs against the Entry's 3.6 µs (a frozen dataclass of 18 fields sets each one through
# object.__setattr__), 400,000 times in the full benchmark. Its field order, checked here:
# the positional fields but `line`, the keyword-only ones, then `line`.
_new_row = tuple.__new__
_ROW_ORDER = (*(f.name for f in fields(Entry) if not f.kw_only and f.name != "line"),
              *(f.name for f in fields(Entry) if f.kw_only), "line")
if _ROW_ORDER != _ENTRY_FIELDS:  # pragma: no cover  (a field added out of that order)
    raise AssertionError(f"Entry's fields changed order: {_ENTRY_FIELDS}")


def short_entry_row(position: int, title: str, abstract: str | None, authors: int | None, org: str | None,
                    published: dt.date | None, upvotes: int | None, arxiv_id: str | None, line: int | None) -> Any:
    """Entry(position, ..., line) as an EntryRow (the same values, read by the same attributes)."""
    return _new_row(EntryRow, (position, title, abstract, authors, org, published, upvotes, arxiv_id,
                               *_NO_KEYWORDS, line))


def _entry(values: tuple[Any, ...]) -> Entry:
    """An Entry from its values in field order (how it crosses from the parsing worker)."""
    entry: Entry = _make_entry(values)
    return entry


def _short_entry(values: tuple[Any, ...]) -> Entry:
    """An Entry from its positional fields' values, the keyword-only ones unknown."""
    return Entry(*values)


@dataclass(frozen=True, slots=True)
class Listing:
    """A parsed dump: where it came from, when it was captured, what it held."""

    source: str
    as_of: dt.date
    layout: str
    content_hash: str
    # Entry objects; in backfill's writer, when they came from its parsing worker, EntryRows
    # (the same values and attribute names: the transport of ingest.ahead, read by the diff).
    entries: tuple[Entry, ...]
    # The entries' title keys (ingest.identity.title_key), when the parser worked them out: the
    # backfill's parsing worker does, so the writer does not. Derived, so left out of equality.
    title_keys: tuple[str, ...] | None = field(default=None, compare=False)
    # The entries' keyword points per topic of the stored topic index (paperdigest.topic_index
    # EntryMatcher), with the fingerprint of the spec matched against: worked out by the
    # backfill's parsing worker, so the writer does not. Derived, so left out of equality.
    topic_points: tuple[str, tuple[Any, ...]] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RawDump:
    """A dump's bytes and where they came from, before parsing."""

    source: str
    data: bytes
    mtime: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A dump that was refused: its source, the file, why, and what identifies the file.

    `source` is a daemon source's name, or for the commands the dump's folder (or the URL);
    `file_key` is the content hash, or the path when the file could not be read; `as_of` is the
    capture date as far as it is known (a newer good dump from the same source settles it)."""

    source: str
    file: str
    reason: str
    file_key: str
    as_of: dt.date


@dataclass(frozen=True, slots=True)
class DumpResult:
    """What ingesting one dump did (the `ingest --json` line)."""

    source: str
    as_of: dt.date
    entries: int
    new: int
    updated: int
    unchanged: int
    duplicate_dump: bool
    dry_run: bool = False

    def describe(self) -> str:
        """The line `ingest` prints."""
        text = (
            f"{self.source}: captured {self.as_of}, {self.entries} entries: {self.new} new, "
            f"{self.updated} updated, {self.unchanged} unchanged"
        )
        if self.duplicate_dump:
            text += " (already ingested: nothing changed)"
        if self.dry_run:
            text += " (dry run: nothing written)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "entries": self.entries,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicate_dump": self.duplicate_dump,
        }


@dataclass(frozen=True, slots=True)
class Paper(Listed, _Identity):
    """A stored paper as the rest of the program sees it: its id, the Listed fields, and the
    capture dates of the first and the last dump that held it."""

    first_seen: dt.date
    last_seen: dt.date

    def to_json(self) -> dict[str, Any]:
        """The `papers --json` line: what the listings said of it (the abstract aside) and when it
        was first seen."""
        return {name: json_value(getattr(self, name)) for name in PAPERS_JSON_FIELDS}


PAPER_FIELDS = tuple(f.name for f in fields(Paper))
_make_paper = _builder(Paper)


def paper_from(values: Sequence[Any]) -> Paper:
    """A Paper from its values in PAPER_FIELDS order (a row of the store)."""
    paper: Paper = _make_paper(values)
    return paper


# `papers --json`: what the listings said (not the long texts' source, the abstract, nor the
# thumbnail's address, which is for pictures), and when the paper was first seen.
PAPERS_JSON_FIELDS = tuple(
    name for name in PAPER_FIELDS if name not in ("id", "abstract", "last_seen", "thumbnail")
)


def json_value(value: Any) -> Any:
    """A field as JSON holds it: dates in ISO 8601, sequences as lists."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True, slots=True)
class Found:
    """A dump a source found, before it is parsed.

    `key` is its content hash (the file's path when it could not be read); `captured` the
    capture date as far as it is known before parsing (for the record of a refusal); `raw` its
    bytes, or None with `unread` saying why it could not be read (unreadable, too large);
    `as_of` the capture date the source vouches for (an HTTP fetch: its day), else the dump's
    own; `file` the inbox file to settle once the dump is ingested or refused."""

    name: str
    key: str
    captured: dt.date
    raw: RawDump | None
    unread: str | None = None
    as_of: dt.date | None = None
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class SourceMemory:
    """What the store remembers of a source's last polls, handed to its next fetch: the HTTP
    validators of the last response, and for a source fetched by day (huggingface) the last day it
    holds complete (fetched after the day had ended)."""

    etag: str | None = None
    last_modified: str | None = None
    complete_through: dt.date | None = None

    @property
    def validators(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified}


@dataclass(frozen=True, slots=True)
class Day:
    """A source fetched by day: what one day's listing held (`items`: None when the server said it
    had not changed since the last fetch, a 304)."""

    day: dt.date
    items: int | None


@dataclass
class Fetched:
    """What one poll of a source found: dumps, files still being written, HTTP validators.
    `skip_known`: the files stay put, so dumps ingested or refused before are skipped unparsed;
    `failing_when_bad`: a dump that does not parse is the source's failure, not a refusal.
    A source fetched by day also says which `days` it asked for (oldest first; the last is today)
    and through which day it now holds every listing complete."""

    found: list[Found] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    validators: dict[str, str | None] = field(default_factory=dict)
    skip_known: bool = False
    failing_when_bad: bool = False
    days: list[Day] = field(default_factory=list)
    complete_through: dt.date | None = None


@dataclass
class PollResult:
    """What a poll of a source did: dumps ingested and refused, files left to settle."""

    source: str
    ingested: list[DumpResult] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written
    validators: dict[str, str | None] = field(default_factory=dict)  # HTTP: etag, last_modified
    empty: bool = False  # the source answered with a listing of zero entries
    days: list[Day] = field(default_factory=list)  # a source fetched by day: the days it asked for
    complete_through: dt.date | None = None  # ... and the last one it now holds complete

    @property
    def entries(self) -> int:
        return sum(r.entries for r in self.ingested)

    @property
    def new(self) -> int:
        return sum(r.new for r in self.ingested if not r.duplicate_dump)

    @property
    def changed(self) -> bool:
        return any(not r.duplicate_dump for r in self.ingested)
