"""Diff a listing against the stored papers (pure), then apply it in one transaction per dump.

    known   = store.papers_by_identity(arxiv ids and title keys of the listing)
    changes = diff(listing, known)          # new / updated / unchanged, no I/O
    apply(changes)                          # insert dump, insert/update papers, sightings

Rules (DESIGN.md "Meaning"):
- identity: arXiv id, else the title key; a paper known by title gains its arXiv id later.
- a dump no older than the paper's last sighting overwrites fields with what it knows;
  an older dump only fills gaps. Unknown (null) never overwrites known.
- first seen = the earliest capture date that held the paper.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from paperdigest import clock
from paperdigest.errors import StoreError
from paperdigest.identity import title_key
from paperdigest.model import LISTING_FIELDS, DumpResult, Entry, Listing, Paper, Rejected
from paperdigest.store import queries
from paperdigest.store.engine import describe

log = logging.getLogger("paperdigest")

ChangeKind = Literal["new", "updated", "unchanged"]
# Merge rules by field, derived from the model: a newer dump overwrites every listing field it
# knows (not the arXiv id, which is identity: gained once, never changed); an older one only
# fills gaps, and never renames a paper.
_OVERWRITE = tuple(name for name in LISTING_FIELDS if name != "arxiv_id")
_FILL = tuple(name for name in _OVERWRITE if name != "title")


@dataclass(slots=True)
class _State:
    """A paper while a dump is diffed (a mutable working copy): its listing fields by name."""

    id: int | None
    title_key: str
    first_seen: dt.date
    last_seen: dt.date
    values: dict[str, Any]

    @property
    def arxiv_id(self) -> str | None:
        found: str | None = self.values["arxiv_id"]
        return found

    def paper(self) -> Paper:
        """The paper as stored once the change is applied (id 0: not stored yet)."""
        return Paper(id=self.id or 0, first_seen=self.first_seen, last_seen=self.last_seen, **self.values)


@dataclass(frozen=True, slots=True)
class Change:
    """What one dump does to one paper. `after` is the paper once applied (id 0 for a new one),
    `title_key` its identity key; `dirty` says whether the stored row must be written at all
    (a field or last_seen moved)."""

    kind: ChangeKind
    paper_id: int | None
    position: int
    upvotes: int | None
    fields: tuple[str, ...]
    after: Paper
    title_key: str
    dirty: bool = True


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[Change, ...]

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for change in self.changes if change.kind == kind)


def _state(paper: Paper, key: str) -> _State:
    """The working copy of a stored paper."""
    values = {name: getattr(paper, name) for name in LISTING_FIELDS}
    return _State(paper.id, key, paper.first_seen, paper.last_seen, values)


def _new_state(entry: Entry, key: str, as_of: dt.date) -> _State:
    """A paper first seen in this listing."""
    return _State(None, key, as_of, as_of, {name: getattr(entry, name) for name in LISTING_FIELDS})


class _Index:
    """Lookup of working states by arXiv id and by title key."""

    def __init__(self, papers: list[tuple[Paper, str]]) -> None:
        self.by_arxiv: dict[str, _State] = {}
        self.by_key: dict[str, list[_State]] = {}
        for paper, key in sorted(papers, key=lambda item: item[0].id):
            self.add(_state(paper, key))

    def add(self, state: _State) -> None:
        if state.arxiv_id:
            self.by_arxiv[state.arxiv_id] = state
        self.by_key.setdefault(state.title_key, []).append(state)

    def refresh(self, state: _State, old_key: str) -> None:
        """Re-register a state a merge changed: a new title key, or an arXiv id gained."""
        if state.title_key != old_key:
            self.by_key[old_key].remove(state)
            self.by_key.setdefault(state.title_key, []).append(state)
        if state.arxiv_id:
            self.by_arxiv[state.arxiv_id] = state

    def find(self, entry: Entry, key: str) -> _State | None:
        same_title = self.by_key.get(key, [])
        if entry.arxiv_id:
            found = self.by_arxiv.get(entry.arxiv_id)
            if found is not None:
                return found
            return next((s for s in same_title if s.arxiv_id is None), None)
        if not same_title:
            return None
        # Prefer the paper known only by title, then the most recently seen one.
        return min(same_title, key=lambda s: (s.arxiv_id is not None, -s.last_seen.toordinal(), s.id or 0))


def diff(listing: Listing, known: list[Paper] | list[tuple[Paper, str]], keys: list[str] | None = None) -> Diff:
    """The changes a listing makes to the papers in `known` (pure; `known` is not modified).

    `known` holds stored papers, optionally with their stored title keys; `keys` the title
    keys of the listing's entries, when the caller has them already.
    """
    index = _Index([item if isinstance(item, tuple) else (item, title_key(item.title)) for item in known])
    keys = keys if keys is not None else [title_key(e.title) for e in listing.entries]
    as_of = listing.as_of
    changes: dict[int, Change] = {}  # by id(state): one change per paper per dump
    for entry, key in zip(listing.entries, keys, strict=True):
        state = index.find(entry, key)
        if state is None:
            state = _new_state(entry, key, as_of)
            index.add(state)
            changes[id(state)] = Change("new", None, entry.position, entry.upvotes, (), state.paper(), key)
            continue
        earlier = changes.get(id(state))
        # A paper listed twice in one dump: the first listing wins, the later only fills gaps.
        fill_only = earlier is not None or as_of < state.last_seen
        old_key, old_last_seen = state.title_key, state.last_seen
        fields = _merge(state, entry, as_of, fill_only)
        index.refresh(state, old_key)
        if earlier is None:
            kind: ChangeKind = "updated" if fields else "unchanged"
            dirty = bool(fields) or state.last_seen != old_last_seen
            changes[id(state)] = Change(
                kind, state.id, entry.position, entry.upvotes, tuple(fields), state.paper(), state.title_key, dirty
            )
        else:
            all_fields = tuple(dict.fromkeys(earlier.fields + tuple(fields)))
            kind = earlier.kind if earlier.kind == "new" else ("updated" if all_fields else "unchanged")
            upvotes = earlier.upvotes if earlier.upvotes is not None else entry.upvotes
            changes[id(state)] = dataclasses.replace(
                earlier,
                kind=kind,
                fields=all_fields,
                after=state.paper(),
                title_key=state.title_key,
                upvotes=upvotes,
                dirty=earlier.dirty or bool(fields),
            )
    return Diff(tuple(changes.values()))


def _merge(state: _State, entry: Entry, as_of: dt.date, fill_only: bool) -> list[str]:
    """Fold an entry into a paper's state; returns the names of the fields that changed."""
    changed: list[str] = []
    values = state.values
    if entry.arxiv_id and values["arxiv_id"] is None:
        values["arxiv_id"] = entry.arxiv_id
        changed.append("arxiv_id")
    for name in _FILL if fill_only else _OVERWRITE:
        value = getattr(entry, name)
        current = values[name]
        if value is None or value == current or (fill_only and current is not None):
            continue
        values[name] = value
        changed.append(name)
    if "title" in changed:
        state.title_key = title_key(values["title"])
    if as_of < state.first_seen:
        state.first_seen = as_of
        changed.append("first_seen")
    state.last_seen = max(state.last_seen, as_of)
    return changed


def _result(listing: Listing, result_diff: Diff, duplicate: bool = False, dry_run: bool = False) -> DumpResult:
    return DumpResult(
        source=listing.source,
        as_of=listing.as_of,
        entries=len(listing.entries),
        new=result_diff.count("new"),
        updated=result_diff.count("updated"),
        unchanged=result_diff.count("unchanged"),
        duplicate_dump=duplicate,
        dry_run=dry_run,
    )


def _diff_against_store(conn: Any, listing: Listing) -> Diff:
    """Read the stored papers the listing may name (bulk), then diff."""
    keys = [title_key(e.title) for e in listing.entries]
    arxiv_ids = [e.arxiv_id for e in listing.entries if e.arxiv_id]
    return diff(listing, queries.papers_by_identity(conn, arxiv_ids, keys), keys)


def _duplicate(listing: Listing, row: Any) -> DumpResult:
    return DumpResult(
        source=listing.source,
        as_of=row.as_of,
        entries=row.entries,
        new=0,
        updated=0,
        unchanged=row.new + row.updated + row.unchanged,
        duplicate_dump=True,
    )


def apply(
    engine: Engine, listing: Listing, *, backfill: bool = False, dry_run: bool = False, origin: str | None = None
) -> DumpResult:
    """Store one listing in one transaction: entirely or not at all. `origin` names its source
    (a daemon source, or the dump's folder): the rejections of older dumps from there are settled."""
    try:
        if dry_run:
            with engine.connect() as conn, conn.begin():
                row = queries.dump_by_hash(conn, listing.content_hash)
                if row is not None:
                    return dataclasses.replace(_duplicate(listing, row), dry_run=True)
                return _result(listing, _diff_against_store(conn, listing), dry_run=True)
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            row = queries.dump_by_hash(conn, listing.content_hash)
            if row is not None:
                return _duplicate(listing, row)
            changes = _diff_against_store(conn, listing)
            ingested_at = _write(conn, listing, changes, backfill)
            if origin is not None:
                queries.resolve_rejections(conn, origin, listing.as_of, ingested_at)
            return _result(listing, changes)
    except SQLAlchemyError as exc:
        raise StoreError(f"{listing.source}: the store refused the dump, nothing was written: {describe(exc)}") from exc


def _columns_to_write(fields: tuple[str, ...]) -> tuple[str, ...]:
    """last_seen always; upvotes and first_seen when they changed; every column otherwise."""
    if not set(fields) <= {"upvotes", "first_seen"}:
        return queries.WRITTEN_PAPER_COLUMNS
    return (*(name for name in ("upvotes", "first_seen") if name in fields), "last_seen")


def _write(conn: Any, listing: Listing, changes: Diff, backfill: bool) -> dt.datetime:
    """Insert the dump, its new papers and sightings, update the changed papers; the ingest time."""
    ingested_at = clock.now()
    new = [c for c in changes.changes if c.kind == "new"]
    dump_id = queries.insert_dump(
        conn,
        {
            "content_hash": listing.content_hash,
            "source": listing.source,
            "as_of": listing.as_of,
            "layout": listing.layout,
            "ingested_at": ingested_at,
            "backfill": backfill,
            "status": "ingested",
            "entries": len(listing.entries),
            "new": len(new),
            "updated": changes.count("updated"),
            "unchanged": changes.count("unchanged"),
        },
    )
    first = {"first_dump_id": dump_id, "first_ingested_at": ingested_at, "first_backfill": backfill}
    new_ids = iter(queries.insert_papers(conn, [(c.after, c.title_key) for c in new], first))
    # Write only the columns that moved: SQLite rewrites an index entry for every indexed
    # column named in SET, changed or not. Most known papers only gain upvotes or a sighting.
    groups: dict[tuple[str, ...], list[tuple[Paper, str]]] = {}
    for change in changes.changes:
        if change.kind != "new" and change.dirty:
            groups.setdefault(_columns_to_write(change.fields), []).append((change.after, change.title_key))
    for columns, papers in groups.items():
        queries.update_papers(conn, papers, columns)
    sightings = []
    for change in changes.changes:
        paper_id = next(new_ids) if change.kind == "new" else change.paper_id
        sightings.append(
            {"dump_id": dump_id, "paper_id": paper_id, "position": change.position, "upvotes": change.upvotes}
        )
    queries.insert_sightings(conn, sightings)
    return ingested_at


def reject(engine: Engine, rejected: Rejected) -> None:
    """Remember a refused dump, for `status`. The refusal itself is reported by the caller, so a
    store that cannot take the note is logged, never allowed to hide the refusal."""
    values = {
        "source": rejected.source,
        "file_key": rejected.file_key,
        "file": rejected.file,
        "reason": rejected.reason,
        "as_of": rejected.as_of,
        "rejected_at": clock.now(),
    }
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            queries.record_rejection(conn, values)
    except SQLAlchemyError as exc:
        log.error("cannot record the rejection of %s: %s", rejected.file, describe(exc))
