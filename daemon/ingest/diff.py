"""The diff (pure): what a listing changes in the papers the store holds. No I/O.

    changes = diff(listing, known)    # known: the stored papers the listing may name
                                      # each entry -> new / updated / unchanged, in model terms
    changes = diff_rows(listing, rows)  # the same, known as the store's rows (what the ingest reads)

Rules (DESIGN.md "Meaning"):
- identity: arXiv id, else the title key; a paper known by title gains its arXiv id later.
- a dump no older than the paper's last sighting overwrites fields with what it knows;
  an older dump only fills gaps. Unknown (null) never overwrites known.
- first seen = the earliest capture date that held the paper.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, make_dataclass
from operator import attrgetter, itemgetter
from typing import Any, Literal

from paperdigest.ingest.identity import title_key
from paperdigest.model import LISTING_FIELDS, PAPER_FIELDS, Entry, Listing, Paper, paper_from

ChangeKind = Literal["new", "updated", "unchanged"]
# Merge rules by field, derived from the model: a newer dump overwrites every listing field it
# knows (not the arXiv id, which is identity: gained once, never changed); an older one only
# fills gaps, and never renames a paper.
_OVERWRITE = tuple(name for name in LISTING_FIELDS if name != "arxiv_id")
_FILL = tuple(name for name in _OVERWRITE if name != "title")


# A paper while a dump is diffed (a mutable working copy): the Paper's fields, as attributes
# (the diff reads and writes them by the hundred thousand), and its title key. Made from the
# model's field list, so a field added to the model is merged here with no change.
_State = make_dataclass(
    "_State", [(name, Any) for name in PAPER_FIELDS] + [("title_key", str)], slots=True
)
_PAPER_VALUES = attrgetter(*PAPER_FIELDS)
_LISTED_VALUES = attrgetter(*LISTING_FIELDS)
_OVERWRITE_VALUES = attrgetter(*_OVERWRITE)
_FILL_VALUES = attrgetter(*_FILL)
_ROW_ID = itemgetter(PAPER_FIELDS.index("id"))


def _paper_of(state: Any) -> Paper:
    """The paper as stored once the change is applied (id 0: not stored yet)."""
    return paper_from(_PAPER_VALUES(state))


@dataclass(slots=True)  # not frozen: treated as immutable, but its __init__ (one per entry) then
class Change:  # assigns plainly, where frozen's object.__setattr__ per field costs 0.7 µs more
    """What one dump does to one paper. `after` is the paper once applied (id 0 for a new one),
    `title_key` its identity key; `dirty` says whether the stored row must be written at all
    (a field or last_seen moved). `values` holds the same as `after` as attributes of the
    diff's working copy, which the store writes from without building a Paper for each row."""

    kind: ChangeKind
    paper_id: int | None
    position: int
    upvotes: int | None
    fields: tuple[str, ...]
    values: Any
    title_key: str
    dirty: bool = True

    @property
    def after(self) -> Paper:
        return _paper_of(self.values)


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[Change, ...]

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for change in self.changes if change.kind == kind)


def _new_state(entry: Entry, key: str, as_of: dt.date) -> Any:
    """A paper first seen in this listing (id 0 until the store gives it one)."""
    return _State(0, *_LISTED_VALUES(entry), as_of, as_of, key)


class _Index:
    """Lookup of working states by arXiv id and by title key."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.by_arxiv: dict[str, Any] = {}
        self.by_key: dict[str, list[Any]] = {}
        for row in sorted(rows, key=_ROW_ID):
            self.add(_State(*row))

    def add(self, state: Any) -> None:
        if state.arxiv_id:
            self.by_arxiv[state.arxiv_id] = state
        self.by_key.setdefault(state.title_key, []).append(state)

    def refresh(self, state: Any, old_key: str) -> None:
        """Re-register a state a merge changed: a new title key, or an arXiv id gained."""
        if state.title_key != old_key:
            self.by_key[old_key].remove(state)
            self.by_key.setdefault(state.title_key, []).append(state)
        if state.arxiv_id:
            self.by_arxiv[state.arxiv_id] = state

    def find(self, entry: Entry, key: str) -> Any | None:
        same_title = self.by_key.get(key, [])
        if entry.arxiv_id:
            found = self.by_arxiv.get(entry.arxiv_id)
            if found is not None:
                return found
            return next((s for s in same_title if s.arxiv_id is None), None)
        if len(same_title) < 2:  # the usual case: one paper of that title, or none
            return same_title[0] if same_title else None
        # Prefer the paper known only by title, then the most recently seen one.
        return min(same_title, key=lambda s: (s.arxiv_id is not None, -s.last_seen.toordinal(), s.id or 0))


def diff(listing: Listing, known: list[Paper] | list[tuple[Paper, str]], keys: list[str] | None = None) -> Diff:
    """The changes a listing makes to the papers in `known` (pure; `known` is not modified).

    `known` holds stored papers, optionally with their stored title keys; `keys` the title
    keys of the listing's entries, when the caller has them already.
    """
    pairs = (item if isinstance(item, tuple) else (item, title_key(item.title)) for item in known)
    return diff_rows(listing, [(*_PAPER_VALUES(paper), key) for paper, key in pairs], keys)


def diff_rows(listing: Listing, rows: list[tuple[Any, ...]], keys: list[str] | None = None) -> Diff:
    """diff, with the stored papers as the store's rows: each one's values in PAPER_FIELDS order,
    then its title key (queries.paper_rows_by_identity)."""
    index = _Index(rows)
    keys = keys if keys is not None else [title_key(e.title) for e in listing.entries]
    as_of = listing.as_of
    changes: dict[int, Change] = {}  # by id(state): one change per paper per dump
    for entry, key in zip(listing.entries, keys, strict=True):
        state = index.find(entry, key)
        if state is None:
            state = _new_state(entry, key, as_of)
            index.add(state)
            changes[id(state)] = Change("new", None, entry.position, entry.upvotes, (), state, key)
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
                kind, state.id, entry.position, entry.upvotes, tuple(fields), state, state.title_key, dirty
            )
        else:
            all_fields = tuple(dict.fromkeys(earlier.fields + tuple(fields)))
            kind = earlier.kind if earlier.kind == "new" else ("updated" if all_fields else "unchanged")
            upvotes = earlier.upvotes if earlier.upvotes is not None else entry.upvotes
            changes[id(state)] = dataclasses.replace(
                earlier,
                kind=kind,
                fields=all_fields,
                values=state,
                title_key=state.title_key,
                upvotes=upvotes,
                dirty=earlier.dirty or bool(fields),
            )
    return Diff(tuple(changes.values()))


def _merge(state: Any, entry: Entry, as_of: dt.date, fill_only: bool) -> list[str]:
    """Fold an entry into a paper's state; returns the names of the fields that changed."""
    changed: list[str] = []
    if entry.arxiv_id and state.arxiv_id is None:
        state.arxiv_id = entry.arxiv_id
        changed.append("arxiv_id")
    names, values = (_FILL, _FILL_VALUES(entry)) if fill_only else (_OVERWRITE, _OVERWRITE_VALUES(entry))
    for name, value in zip(names, values, strict=True):
        if value is None:  # unknown never overwrites (most of a text dump's fields)
            continue
        current = getattr(state, name)
        if value == current or (fill_only and current is not None):
            continue
        setattr(state, name, value)
        changed.append(name)
    if "title" in changed:
        state.title_key = title_key(state.title)
    if as_of < state.first_seen:
        state.first_seen = as_of
        changed.append("first_seen")
    state.last_seen = max(state.last_seen, as_of)
    return changed
