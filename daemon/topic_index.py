"""The topic index: which papers match each topic, with the key `papers --topic` ranks them by,
kept in the store (paper_topic) so that the best N of a topic are the first N entries of an
index, whatever the store's size.

    ensure(engine, settings)       # at `run`'s start or reload: rebuilt (and logged); one-shot
                                   # ingests build a first one only (rebuild=False)
                                   # when the config's topics or scoring weights changed
    upkeep(conn, changes, ids, listing)  # in each dump's transaction (ingest/write.py, one call)
    Upkeep(conn).add(...) ... .flush()   # backfill's groups of dumps: once, at the group's end
    EntryMatcher(spec).points(entries, keys)  # backfill's parsing worker: each entry's keyword
                                   # points ahead (Listing.topic_points), so the writer only inserts
    ranked(conn, settings, ...)    # `papers --topic`: None when the index is not for this config

What the table was built for (the topics, the weights, and SCHEME, the matching rules) is kept
beside it (topic_index) with its fingerprint. The ingest keeps the table current for what it was
built for, whatever config the ingesting process has; a reader whose config has another
fingerprint does not use it (score.ranked_papers scans the papers instead), so a changed config
is never served stale scores, only slower ones until `paperdigest run` rebuilds it.

The matching and the scores are score.py's rules (its folding, its weights summed in its order
of hits, checked against the scan by tests/test_topic_index.py), so a paper's entry says exactly
what the scan would compute: keyword points once per (topic, paper), and the score as
upvote_points + keyword points, the same floats in the same order of addition. Per dump only the
new papers, and those whose title, abstract or AI keywords changed, are matched; a paper whose
upvotes alone changed has its entries' keys rewritten, the keyword points kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from paperdigest import clock
from paperdigest.config import ScoringSettings, Settings, TopicSettings
from paperdigest.errors import StoreError
from paperdigest.folding import WORD, fold_word, folded
from paperdigest.model import Paper
from paperdigest.score import (
    WHERE,
    Hit,
    ScoredPaper,
    _keyword_points,
    upvote_points,
)
from paperdigest.store import queries
from paperdigest.store.engine import describe
from paperdigest.store.queries import topics as topic_queries

log = logging.getLogger("paperdigest")

# The matching and scoring rules the table holds (score.py): part of the fingerprint, so that a
# release that matches or scores otherwise rebuilds the table. Raise it with such a change.
SCHEME = 1
TEXT_FIELDS = frozenset({"title", "abstract", "ai_keywords"})  # a change of one of these: matched again
REBUILD_CHUNK = 5000  # papers read (by id) and matched per step of a rebuild



# --- what the table is built for ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...]
    # Each keyword with its folded needle, and the excludes' needles, as score.matches folds
    # them; a keyword that folds to nothing never hits (matches: `needle.strip() != ""`).
    needles: tuple[tuple[str, str], ...]
    exclude_needles: tuple[str, ...]
    needle_set: frozenset[str]  # the keywords' needles


@dataclass(frozen=True, slots=True)
class Spec:
    """Topics and weights, as the table was (or is to be) built for them."""

    fingerprint: str
    text: str  # the JSON stored in topic_index.spec
    weights: ScoringSettings
    topics: tuple[_Topic, ...]
    needles: tuple[str, ...]  # every topic's keywords' needles, each once


def spec_of(topics: dict[str, TopicSettings], weights: ScoringSettings) -> Spec:
    data = {
        "scheme": SCHEME,
        "weights": {
            "upvotes": weights.upvotes,
            "title": weights.title,
            "abstract": weights.abstract,
            "ai_keywords": weights.ai_keywords_weight,
        },
        "topics": {name: {"keywords": list(t.keywords), "exclude": list(t.exclude)} for name, t in topics.items()},
    }
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _parsed(text)


_PARSED: dict[str, Spec] = {}  # by the stored JSON: parsed once per process


def _parsed(text: str) -> Spec:
    spec = _PARSED.get(text)
    if spec is None:
        data = json.loads(text)
        w = data["weights"]
        weights = ScoringSettings(upvotes=w["upvotes"], title=w["title"], abstract=w["abstract"],
                                  ai_keywords=w["ai_keywords"])
        topics = []
        for name, t in sorted(data["topics"].items()):
            keywords, exclude = tuple(t["keywords"]), tuple(t["exclude"])
            needles = tuple((k, folded(k)) for k in keywords if folded(k).strip())
            exclude_needles = tuple(folded(k) for k in exclude if folded(k).strip())
            topics.append(_Topic(name, keywords, exclude, needles, exclude_needles,
                                 frozenset(needle for _, needle in needles)))
        fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
        every = tuple(dict.fromkeys(needle for topic in topics for _, needle in topic.needles))
        spec = _PARSED[text] = Spec(fingerprint, text, weights, tuple(topics), every)
    return spec


def settings_spec(settings: Settings) -> Spec:
    return spec_of(settings.topics, settings.scoring)


def stored_spec(conn: Connection) -> Spec | None:
    """What the table holds now; None before its first build."""
    text = topic_queries.index_spec(conn)
    return _parsed(text) if text is not None else None


# --- matching ------------------------------------------------------------------------------------


class _Folds(dict[str, str]):
    """fold_word's answers, by word: a paper's words are mostly words seen before. Read through
    dict's own lookup (map(_FOLDS.__getitem__, words)); a word not seen yet is folded here."""

    def __missing__(self, word: str) -> str:
        done = fold_word(word)
        if len(self) < _FOLDS_KEPT:
            self[word] = done
        return done


_FOLDS = _Folds()
_FOLDS_KEPT = 200_000
_FOLD = _FOLDS.__getitem__


# ASCII's word characters (\w: letters, digits, "_") lower-cased, every other ASCII character a
# space: an ASCII text's words, case-folded, are text.translate(_ASCII_WORDS).split(), which costs
# 4.2 µs against WORD.findall(text.casefold())'s 7.3 µs for an abstract of some 250 characters
# (str.translate keeps a table of ASCII answers; the split is C). Tested against WORD.findall.
_ASCII_WORDS = {i: chr(i).lower() if chr(i).isalnum() or chr(i) == "_" else " " for i in range(128)}


def _folded_text(text: str) -> str:
    """score.folded(text), uncached (each paper is read once), each word folded once per process
    (a regular expression per rule, over the whole text, measured 4x slower). ASCII is its own
    NFKC form, so such a text (the usual one) skips the normalisation, and is split by a table."""
    if text.isascii():
        return " " + " ".join(map(_FOLD, text.translate(_ASCII_WORDS).split())) + " "
    text = unicodedata.normalize("NFKC", text)
    return " " + " ".join(map(_FOLD, WORD.findall(text.casefold()))) + " "


def _texts(title: str, abstract: str | None, ai_keywords: Sequence[str] | None) -> tuple[str, str, str]:
    """A paper's texts folded as score._topic_hits folds them: title, abstract, AI keywords."""
    return (_folded_text(title), _folded_text(abstract or ""),
            "|".join(folded(k) for k in ai_keywords) if ai_keywords else "")


def _hits(topic: _Topic, texts: tuple[str, str, str]) -> tuple[Hit, ...] | None:
    """score._hits(topic's keywords, excludes, *texts), with the needles folded once per topic."""
    for needle in topic.exclude_needles:
        if needle in texts[0] or needle in texts[1] or needle in texts[2]:
            return None
    hits = [Hit(word, where) for where, text in zip(WHERE, texts, strict=True)
            for word, needle in topic.needles if needle in text]
    return tuple(hits) or None


Points = tuple[tuple[int, float], ...]  # (the topic's place in Spec.topics, its keyword points), per matched topic


def _points(spec: Spec, texts: tuple[str, str, str]) -> Points:
    """The keyword points of each topic of `spec` the texts match: _keyword_points(_hits(...)),
    without a Hit per hit. The same weights summed in the same order (title's hits, then the
    abstract's, then the AI keywords', each in the topic's keyword order), so the same float.
    First the needles found in any of the texts (one test each, on the texts joined: a needle in
    one text is in the joined string), then only the topics with one of those, text by text:
    most papers hold no keyword of most topics (three times fewer tests, in process)."""
    joined = "\x00".join(texts)
    found = {needle for needle in spec.needles if needle in joined}
    if not found:
        return ()
    weights = spec.weights
    by_where = tuple(zip((weights.title, weights.abstract, weights.ai_keywords_weight), texts, strict=True))
    out = []
    for n, topic in enumerate(spec.topics):
        if found.isdisjoint(topic.needle_set):
            continue
        if topic.exclude_needles and any(needle in text for needle in topic.exclude_needles for text in texts):
            continue
        hit = [weight for weight, text in by_where if text for _, needle in topic.needles
               if needle in found and needle in text]
        if hit:
            out.append((n, sum(hit)))
    return tuple(out)


def _rows(spec: Spec, pid: int, upvotes: int | None, title: str, points: Points) -> list[tuple[Any, ...]]:
    """The paper's rows of paper_topic (ENTRY_COLUMNS): one per topic it matches."""
    if not points:
        return []
    up = upvote_points(upvotes, spec.weights)
    neg_upvotes = -(upvotes or 0)
    topics = spec.topics
    return [(pid, topics[n].name, p, -(up + p), neg_upvotes, title) for n, p in points]


def _entries(spec: Spec, pid: int, upvotes: int | None, title: str, abstract: str | None,
             ai_keywords: Sequence[str] | None) -> list[tuple[Any, ...]]:
    return _rows(spec, pid, upvotes, title, _points(spec, _texts(title, abstract, ai_keywords)))


class EntryMatcher:
    """Backfill's parsing worker matches each entry of a listing against the stored spec
    (Listing.topic_points), so that on two cores the writer only inserts. An entry whose title
    key and texts equal those of an entry matched in one of the last KEPT dumps reuses its
    points (a paper is listed on many days; most entries of a dump are such papers)."""

    KEPT = 32

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.dumps = 0
        self.seen: dict[str, tuple[int, str, str | None, Any, Points]] = {}

    def points(self, entries: Sequence[Any], keys: Sequence[str]) -> tuple[Points, ...]:
        self.dumps += 1
        dumps, seen, spec = self.dumps, self.seen, self.spec
        out = []
        for entry, key in zip(entries, keys, strict=True):
            title, abstract, ai_keywords = entry.title, entry.abstract, entry.ai_keywords
            known = seen.get(key)
            if known is not None and known[1] == title and known[2] == abstract and known[3] == ai_keywords:
                points = known[4]
            else:
                points = _points(spec, _texts(title, abstract, ai_keywords))
            seen[key] = (dumps, title, abstract, ai_keywords, points)
            out.append(points)
        if dumps % self.KEPT == 0:
            self.seen = {k: v for k, v in seen.items() if v[0] > dumps - self.KEPT}
        return tuple(out)


# --- the ingest's part ------------------------------------------------------------------------------


def upkeep(conn: Connection, changes: Sequence[Any], paper_ids: Sequence[int | None], listing: Any = None) -> None:
    """Keep paper_topic current with one dump's changes (ingest.diff.Change, each with its paper's
    id), in the dump's transaction: new papers, and papers whose texts changed, matched against
    what the table was built for; papers whose upvotes alone changed get their keys rewritten.
    Nothing before the table's first build (ensure). The listing's entries' points
    (Listing.topic_points, from backfill's parsing worker) are used when they were matched
    against the same spec and the paper's texts are the entry's; anything else is matched here."""
    pending = Upkeep(conn)
    pending.add(changes, paper_ids, listing)
    pending.flush()


class Upkeep:
    """The index's upkeep of several dumps written in one transaction (backfill's groups), done
    once at the end (`flush`): each paper's entries made or re-keyed once, from its values after
    the last dump of the group that changed it. What the dumps one by one would leave: a paper's
    entries depend on its texts and upvotes alone, and those are the last change's values.
    `upkeep` is this for one dump. The spec is read once: the ingests' lock, held by the
    transaction, keeps a rebuild from replacing it meanwhile."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        spec = stored_spec(conn)
        self.spec = spec if spec is not None and spec.topics else None
        # paper id -> (its last change: the paper once the dumps are applied; that dump's listing)
        self.match: dict[int, tuple[Any, Any]] = {}
        self.rescore: dict[int, int | None] = {}  # paper id -> its upvotes now (entries kept, keys moved)
        self.replaced: set[int] = set()  # papers with entries from before whose texts changed
        self.new: set[int] = set()  # papers made by these dumps: no entries yet

    def add(self, changes: Sequence[Any], paper_ids: Sequence[int | None], listing: Any = None) -> None:
        """One dump's changes (in the order written), each with its paper's id."""
        if self.spec is None:
            return
        match, rescore = self.match, self.rescore
        for change, pid in zip(changes, paper_ids, strict=True):
            if pid is None:  # never: every change has its paper's id by now
                continue
            if change.kind == "new":
                match[pid] = (change, listing)
                self.new.add(pid)
            elif change.dirty and change.fields:
                if TEXT_FIELDS.intersection(change.fields):
                    match[pid] = (change, listing)
                    if pid not in self.new:
                        self.replaced.add(pid)
                    rescore.pop(pid, None)
                elif pid in match:  # to be matched anyway: from its newest values
                    match[pid] = (change, listing)
                elif "upvotes" in change.fields:
                    rescore[pid] = change.values.upvotes

    def flush(self) -> None:
        """The entries written: the replaced deleted, the matched inserted, the others re-keyed."""
        spec, conn = self.spec, self.conn
        if spec is None:
            return
        if self.replaced:
            topic_queries.delete_entries(conn, self.replaced)
        if self.match:
            given_by_listing: dict[int, dict[int, tuple[Any, Points]] | None] = {}
            rows: list[tuple[Any, ...]] = []
            for pid, (change, listing) in self.match.items():
                v = change.values
                title, abstract, ai_keywords = v.title, v.abstract, v.ai_keywords
                if id(listing) not in given_by_listing:
                    given_by_listing[id(listing)] = _given_points(spec, listing)
                given = given_by_listing[id(listing)]
                entry = given.get(change.position) if given else None
                if (entry is not None and entry[0].title == title and entry[0].abstract == abstract
                        and entry[0].ai_keywords == ai_keywords):
                    points = entry[1]
                else:
                    points = _points(spec, _texts(title, abstract, ai_keywords))
                rows += _rows(spec, pid, v.upvotes, title, points)
            topic_queries.insert_entries(conn, rows)
        if self.rescore:
            weights = spec.weights
            topic_queries.rescore_entries(
                conn, [(upvote_points(u, weights), -(u or 0), pid) for pid, u in sorted(self.rescore.items())]
            )
        self.match, self.rescore, self.replaced, self.new = {}, {}, set(), set()


def _given_points(spec: Spec, listing: Any) -> dict[int, tuple[Any, Points]] | None:
    """The listing's precomputed points by entry position, when matched against `spec`."""
    given = getattr(listing, "topic_points", None)
    if given is None or given[0] != spec.fingerprint:
        return None
    return {entry.position: (entry, points) for entry, points in zip(listing.entries, given[1], strict=True)}


# --- building ------------------------------------------------------------------------------------------


def ensure(engine: Engine, settings: Settings, rebuild: bool = True) -> bool:
    """Rebuild paper_topic when it was not built for these topics and weights (logged); True if it
    was. The papers are read and matched without the ingests' lock (short read transactions, so
    ingests go on meanwhile); the lock is held only for the final write, one transaction that
    replaces the table and its fingerprint: readers see the old table or the new one.

    `rebuild=False` (the one-shot `ingest` and `backfill`) builds a store's first index but keeps
    one built for another config: such a command may run with another config than the daemon's
    (the embedded default, a test file), and a rebuild reads and matches every paper (minutes on
    a large store). The ingest keeps the index current for what it was built for either way; `run`
    (the daemon at its start and on reload, or `run --once`) rebuilds it for its config."""
    from paperdigest.ingest.write import serialise_ingests  # noqa: PLC0415  lazy: ingest imports this module

    spec = settings_spec(settings)
    try:
        with engine.connect() as conn:
            before = stored_spec(conn)
        if before is not None and before.fingerprint == spec.fingerprint:
            return False
        if before is not None and not rebuild:
            log.info("the topic index is kept for the topics and weights it was built for (another config's): "
                     "`papers --topic` with this config scans the papers; `paperdigest run` rebuilds it")
            return False
        started = time.monotonic()
        with engine.connect() as conn:
            try:
                with conn.begin():
                    newest = topic_queries.newest_dump(conn)
                    topic_queries.create_stage(conn)
                papers = _stage(conn, spec)
                locked = time.monotonic()
                with conn.execution_options(write=True).begin():
                    serialise_ingests(conn)
                    before = stored_spec(conn)
                    if before is not None and before.fingerprint == spec.fingerprint:
                        return False  # another process built it meanwhile
                    entries = _replace(conn, spec, newest)
                held = time.monotonic() - locked
            finally:
                if not conn.invalidated:
                    with conn.execution_options(write=False).begin():
                        topic_queries.drop_stage(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot rebuild the topic index, nothing was changed: {describe(exc)}") from exc
    why = "first build" if before is None else "the config's topics or scoring weights changed"
    log.info("topic index rebuilt (%s): %d topics over %d papers, %d matches, in %.1f s "
             "(the ingests' lock held for %.1f s of it)",
             why, len(spec.topics), papers, entries, time.monotonic() - started, held)
    return True


def defer_first_build(engine: Engine, settings: Settings) -> bool:
    """Before a backfill of dumps: True when the store holds no papers yet (a first history load)
    and its index is unbuilt or built for these settings. The index is then left unbuilt (no
    fingerprint: `papers --topic` scans, and the ingests keep nothing, nor does the parsing worker
    match), and the caller builds it once at the end (`ensure`), in one pass of the papers by id
    and one key-ordered insert: at 200,000 papers, 6 s of CPU against 8 s of upkeep per group
    (each group's entries inserted in random key order, and re-keyed as upvotes move). A backfill
    interrupted before its end leaves the index unbuilt, never stale: the next ingesting command,
    or `run`, builds it. A store with papers, or an index built for another config (which `run`
    may be serving), keeps the upkeep per group."""
    from paperdigest.ingest.write import serialise_ingests  # noqa: PLC0415  lazy: ingest imports this module

    spec = settings_spec(settings)
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            serialise_ingests(conn)
            if topic_queries.has_papers(conn):
                return False
            before = stored_spec(conn)
            if before is not None:
                if before.fingerprint != spec.fingerprint:
                    return False
                topic_queries.forget_index(conn)
            return True
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the store before the backfill: {describe(exc)}") from exc


def _stage(conn: Connection, spec: Spec) -> int:
    """Every paper read (by id, REBUILD_CHUNK at a time, each chunk in its own short transaction,
    which takes no lock on the store: on SQLite the stage is in the temporary database, another
    file) and matched, its entries staged (queries.topics.STAGE); the number of papers read."""
    last, papers = -1, 0
    while spec.topics:
        with conn.begin():
            chunk = topic_queries.papers_to_match(conn, last, REBUILD_CHUNK)
            if not chunk:
                break
            topic_queries.stage_entries(conn, [
                e for r in chunk for e in _entries(spec, r.id, r.upvotes, r.title, r.abstract, r.ai_keywords)
            ])
        papers, last = papers + len(chunk), chunk[-1].id
    return papers


def _replace(conn: Connection, spec: Spec, newest: int) -> int:
    """Under the ingests' lock: the table replaced by the stage, the entries of what changed since
    it was read made again, the fingerprint saved; the number of entries.

    What changed since: the papers read before an ingest committed are stale if it changed them.
    Every change to a paper (its title, abstract, AI keywords, upvotes, withdrawn date, any
    column) is written by ingest/write.py's _write and nothing else (queries.insert_papers and
    update_papers have no other caller; papers are never deleted), in a dump's transaction that
    also inserts a sighting of every paper the dump lists, so of every paper it creates or
    changes. Ingests are serialised (serialise_ingests) and dumps never deleted, so a dump that
    commits after `newest` was read has a greater id (SQLite: rowid max + 1; PostgreSQL: the
    id is drawn under the advisory lock, after every committed dump's). So the papers sighted in
    dumps after `newest` cover every paper created or changed since the read began; matched
    again here, they are current: no ingest can commit while this transaction holds the lock."""
    topic_queries.save_index(conn, spec.fingerprint, spec.text, clock.now(), empty=False)
    topic_queries.replace_from_stage(conn)
    entries = topic_queries.count_entries(conn)
    if not spec.topics:
        return entries
    later = topic_queries.papers_sighted_after(conn, newest)
    fresh = [e for r in later for e in _entries(spec, r.id, r.upvotes, r.title, r.abstract, r.ai_keywords)]
    entries -= topic_queries.delete_entries(conn, [r.id for r in later])
    topic_queries.insert_entries(conn, fresh)
    return entries + len(fresh)


# --- `papers --topic` ------------------------------------------------------------------------------------


def ranked(conn: Connection, settings: Settings, topic: str, since: dt.date | None, limit: int
           ) -> list[ScoredPaper] | None:
    """The best `limit` papers of `topic` (first seen since `since`), as score.ranked_papers lists
    them, read from the index; None when the index is not built for this config's topics and
    weights (or, a safeguard, a chosen paper's entry disagrees with the paper: never served)."""
    spec = settings_spec(settings)
    stored = stored_spec(conn)
    if stored is None or stored.fingerprint != spec.fingerprint:
        return None
    keys = topic_queries.best_entries(conn, topic, since, limit)
    papers = queries.papers_by_ids(conn, [pid for pid, _ in keys])
    chosen = next(t for t in spec.topics if t.name == topic)
    scored = []
    for pid, neg_score in keys:
        found = _scored(spec, chosen, papers.get(pid))
        if found is None or -found.score != neg_score:
            log.warning("topic index: the entry of paper %d under %r disagrees with the paper; "
                        "reading the papers instead", pid, topic)
            return None
        scored.append(found)
    return scored


def _scored(spec: Spec, topic: _Topic, paper: Paper | None) -> ScoredPaper | None:
    if paper is None:
        return None
    hits = _hits(topic, _texts(paper.title, paper.abstract, paper.ai_keywords))
    if hits is None:
        return None
    up = upvote_points(paper.upvotes, spec.weights)
    points = _keyword_points(hits, spec.weights)
    return ScoredPaper(paper, up + points, topic.name, up, points, hits, (topic.name,))


def entries(conn: Connection, topic: str | None = None) -> list[tuple[Any, ...]]:
    """Every entry (paper_id, topic, points, neg_score, neg_upvotes, title), in key order: for tests."""
    return topic_queries.entries(conn, topic)
