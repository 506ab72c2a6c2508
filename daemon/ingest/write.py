"""Applying a listing to the store: one transaction per dump, entirely or not at all.

    known   = store.paper_rows_by_identity(arxiv ids and title keys of the listing)
    changes = diff_rows(listing, known)     # diff.py: pure
    write(changes)                          # insert dump, insert/update papers, sightings

Backfill writes its dumps in groups (Batch): several dumps in one transaction, each diffed
against everything before it (the group's earlier dumps included), the topic index kept once
per group. A group is stored entirely or not at all; one the store refuses is redone dump by
dump by the caller, so a dump is still stored entirely or not at all, whatever its group.

A dump's content hash makes the same bytes twice a no-op. Refused dumps are remembered for
`status` (reject), and settled by a newer good dump from the same source.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import time
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from paperdigest import clock, topic_index
from paperdigest.errors import StoreError
from paperdigest.ingest.diff import Diff, diff_rows
from paperdigest.ingest.identity import title_key
from paperdigest.model import DumpResult, Listing, Rejected
from paperdigest.store import queries
from paperdigest.store.engine import describe

log = logging.getLogger("paperdigest")


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
    keys = list(listing.title_keys) if listing.title_keys is not None else [title_key(e.title) for e in listing.entries]
    arxiv_ids = [e.arxiv_id for e in listing.entries if e.arxiv_id]
    return diff_rows(listing, queries.paper_rows_by_identity(conn, arxiv_ids, keys), keys)


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
    engine: Engine, listing: Listing, *, backfill: bool = False, dry_run: bool = False
) -> DumpResult:
    """Store one listing in one transaction: entirely or not at all."""
    try:
        if dry_run:
            with engine.connect() as conn, conn.begin():
                row = queries.dump_by_hash(conn, listing.content_hash)
                if row is not None:
                    return dataclasses.replace(_duplicate(listing, row), dry_run=True)
                return _result(listing, _diff_against_store(conn, listing), dry_run=True)
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            serialise_ingests(conn)
            row = queries.dump_by_hash(conn, listing.content_hash)
            if row is not None:
                return _duplicate(listing, row)
            changes = _diff_against_store(conn, listing)
            _write(conn, listing, changes, backfill)
            return _result(listing, changes)
    except SQLAlchemyError as exc:
        raise StoreError(f"{listing.source}: the store refused the dump, nothing was written: {describe(exc)}") from exc


@functools.lru_cache(maxsize=256)  # by the change's fields: a few distinct tuples, asked per known paper
def _columns_to_write(fields: tuple[str, ...]) -> tuple[str, ...]:
    """last_seen always; upvotes and first_seen when they changed; every column otherwise."""
    if not set(fields) <= {"upvotes", "first_seen"}:
        return queries.WRITTEN_PAPER_COLUMNS
    return (*(name for name in ("upvotes", "first_seen") if name in fields), "last_seen")


def _write(
    conn: Any, listing: Listing, changes: Diff, backfill: bool, index: topic_index.Upkeep | None = None
) -> dt.datetime:
    """Insert the dump, its new papers and sightings, update the changed papers; the ingest time.
    The topic index is kept here, or, given `index` (a group's), there, at the group's end."""
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
    new_ids = iter(queries.insert_papers(conn, [(c.values, c.title_key) for c in new], first))
    # Write only the columns that moved: SQLite rewrites an index entry for every indexed
    # column named in SET, changed or not. Most known papers only gain upvotes or a sighting.
    groups: dict[tuple[str, ...], list[tuple[Any, str]]] = {}
    for change in changes.changes:
        if change.kind != "new" and change.dirty:
            groups.setdefault(_columns_to_write(change.fields), []).append((change.values, change.title_key))
    for columns, papers in groups.items():
        queries.update_papers(conn, papers, columns)
    paper_ids = [next(new_ids) if change.kind == "new" else change.paper_id for change in changes.changes]
    queries.insert_sightings(
        conn,
        [(dump_id, pid, c.position, c.upvotes) for pid, c in zip(paper_ids, changes.changes, strict=True)],
    )
    if index is None:
        topic_index.upkeep(conn, changes.changes, paper_ids, listing)
    else:
        index.add(changes.changes, paper_ids, listing)
    return ingested_at


GROUP_DUMPS = 32  # a backfill's group: at most this many dumps in one transaction ...
GROUP_SECONDS = 0.5  # ... or this much time writing them (the results are shown as each group commits)


class Batch:
    """A backfill's group of dumps: written one by one (`add`) into one write transaction, each
    diffed against the store as the group's earlier dumps left it (its reads are inside the same
    transaction), so the stored result is what one transaction per dump stores. The topic index
    is kept once, at `commit` (topic_index.Upkeep). Nothing is stored before `commit`; `close`
    rolls back what was not committed. A refusal by the store raises StoreError, with the group
    rolled back: the caller redoes its dumps one by one (`apply`) to find the refused one.

    Taken by the backfill of dump files only: a poll or `ingest` stores each dump as it comes."""

    def __init__(self, engine: Engine, *, backfill: bool = True) -> None:
        self.listings: list[Listing] = []
        self.results: list[DumpResult] = []
        self.started = time.monotonic()
        self._backfill = backfill
        self._conn: Any = None
        self._tx: Any = None
        try:
            self._conn = engine.connect().execution_options(write=True)
            self._tx = self._conn.begin()
            serialise_ingests(self._conn)
            self._index = topic_index.Upkeep(self._conn)
        except SQLAlchemyError as exc:
            self.close()
            raise StoreError(f"the store refused a group of dumps, nothing of it was written: {describe(exc)}") from exc

    @property
    def full(self) -> bool:
        return len(self.listings) >= GROUP_DUMPS or time.monotonic() - self.started >= GROUP_SECONDS

    def add(self, listing: Listing) -> None:
        """Write one more dump into the group (its result is kept for `commit`)."""
        conn = self._conn
        self.listings.append(listing)
        try:
            row = queries.dump_by_hash(conn, listing.content_hash)
            if row is not None:
                self.results.append(_duplicate(listing, row))
                return
            changes = _diff_against_store(conn, listing)
            _write(conn, listing, changes, self._backfill, self._index)
            self.results.append(_result(listing, changes))
        except SQLAlchemyError as exc:
            self.close()
            raise StoreError(f"{listing.source}: the store refused the dump, its group was rolled back: "
                             f"{describe(exc)}") from exc

    def commit(self) -> list[DumpResult]:
        """The topic index kept, the group committed; each dump's result, in order."""
        try:
            self._index.flush()
            self._tx.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"the store refused a group of dumps, nothing of it was written: {describe(exc)}") from exc
        finally:
            self.close()
        return self.results

    def close(self) -> None:
        """Roll back what was not committed and give the connection back (safe to call again)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        except SQLAlchemyError as exc:
            log.debug("rolling back a backfill's group: %s", describe(exc))
        finally:
            conn.close()


INGEST_LOCK = 0x70646967  # "pdig": the PostgreSQL advisory lock held by each ingest's transaction
_SERIALISE = text("SELECT pg_advisory_xact_lock(:key), set_config('enable_seqscan', 'off', true)")


def serialise_ingests(conn: Any) -> None:
    """One ingest at a time, store-wide, until this transaction ends. SQLite has it already (the
    write transaction begins IMMEDIATE); PostgreSQL takes an advisory transaction lock. So a dump
    diffs against what every earlier one committed (no lost update), and dump ids grow in the
    order dumps commit, which is what digest windows are bounded by."""
    if conn.dialect.name == "postgresql":
        # In the same round trip: every read of the ingest is a lookup by a unique key, and a
        # planner without statistics yet (a fresh store filling up, before autovacuum's first
        # ANALYZE) takes `key = ANY(200 keys)` for the whole table and scans it, per dump.
        conn.execute(_SERIALISE, {"key": INGEST_LOCK})


def settle_rejections(engine: Engine, origin: str, results: list[DumpResult]) -> None:
    """Good dumps from `origin` were stored: the refusals of older dumps from there are settled
    (once per command or poll, for the newest of them)."""
    newest = max((r.as_of for r in results if not r.duplicate_dump and not r.dry_run), default=None)
    if newest is None:
        return
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            queries.resolve_rejections(conn, origin, newest, clock.now())
    except SQLAlchemyError as exc:
        log.error("cannot settle the refused dumps of %s: %s", origin, describe(exc))


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
