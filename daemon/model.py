"""Frozen dataclasses passed between the stages. No database types leak out of store/."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    """One paper as a listing shows it. `line` is where it starts in the dump (1-based)."""

    position: int
    title: str
    abstract: str | None
    authors: int | None
    org: str | None
    published: dt.date | None
    upvotes: int | None
    arxiv_id: str | None
    line: int | None = field(default=None, compare=False)

    def __reduce__(self) -> tuple[type[Entry], tuple[Any, ...]]:
        # Entries cross from the backfill's parsing worker by the hundred: a plain argument
        # tuple pickles in a third of the time of the dataclass default (which calls fields()).
        return (Entry, (*(getattr(self, name) for name in _ENTRY_FIELDS),))

    def to_json(self) -> dict[str, Any]:
        """The `parse` line: the position, then what the listing says of the paper."""
        return {"position": self.position, **{name: json_value(getattr(self, name)) for name in LISTING_FIELDS}}


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


@dataclass(frozen=True, slots=True)
class Listing:
    """A parsed dump: where it came from, when it was captured, what it held."""

    source: str
    as_of: dt.date
    layout: str
    content_hash: str
    entries: tuple[Entry, ...]


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
class Paper:
    """A stored paper as the rest of the program sees it."""

    id: int
    title: str
    abstract: str | None
    authors: int | None
    org: str | None
    published: dt.date | None
    upvotes: int | None
    arxiv_id: str | None
    first_seen: dt.date
    last_seen: dt.date

    def to_json(self) -> dict[str, Any]:
        """The `papers --json` line: what the listings said of it (the abstract aside) and when it
        was first seen."""
        return {name: json_value(getattr(self, name)) for name in PAPERS_JSON_FIELDS}


# A paper's fields are defined once, by Entry (what a listing says) and Paper (what the store
# keeps); everything else derives from them. LISTING_FIELDS are the ones a listing fills and
# later listings update: the diff merges them, the store keeps them, the JSON shows them.
LISTING_FIELDS = tuple(name for name in _ENTRY_FIELDS if name in {f.name for f in fields(Paper)} and name != "id")
PAPER_FIELDS = tuple(f.name for f in fields(Paper))
PAPERS_JSON_FIELDS = tuple(name for name in PAPER_FIELDS if name not in ("id", "abstract", "last_seen"))


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


@dataclass
class Fetched:
    """What one poll of a source found: dumps, files still being written, HTTP validators.
    `skip_known`: the files stay put, so dumps ingested or refused before are skipped unparsed;
    `failing_when_bad`: a dump that does not parse is the source's failure, not a refusal."""

    found: list[Found] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    validators: dict[str, str | None] = field(default_factory=dict)
    skip_known: bool = False
    failing_when_bad: bool = False


@dataclass
class PollResult:
    """What a poll of a source did: dumps ingested and refused, files left to settle."""

    source: str
    ingested: list[DumpResult] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written
    validators: dict[str, str | None] = field(default_factory=dict)  # HTTP: etag, last_modified
    empty: bool = False  # the source answered with a listing of zero entries

    @property
    def entries(self) -> int:
        return sum(r.entries for r in self.ingested)

    @property
    def new(self) -> int:
        return sum(r.new for r in self.ingested if not r.duplicate_dump)

    @property
    def changed(self) -> bool:
        return any(not r.duplicate_dump for r in self.ingested)
