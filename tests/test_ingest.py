"""The diff rules and the one-transaction-per-dump ingest, on real stores of both engines."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from paperdigest.errors import StoreError
from paperdigest.ingest import apply, diff
from paperdigest.model import Entry, Listing, Paper, RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine
from tests.conftest import SEED_AS_OF, SEEDS
from tests.storehelp import columns, insert, rows, snapshot, table

D = dt.date
JAN_10 = D(2026, 1, 10)
JAN_5 = D(2026, 1, 5)


def entry(
    title: str,
    position: int = 1,
    *,
    upvotes: int | None = None,
    arxiv: str | None = None,
    abstract: str | None = "An abstract.",
    authors: int | None = None,
    org: str | None = None,
) -> Entry:
    return Entry(position, title, abstract, authors, org, None, upvotes, arxiv)


def listing(*entries: Entry, as_of: dt.date = JAN_10, tag: str = "x") -> Listing:
    return Listing(f"dump-{tag}", as_of, "full", f"hash-{tag}-{as_of}", tuple(entries))


def paper(
    pid: int,
    title: str,
    *,
    upvotes: int | None = None,
    arxiv: str | None = None,
    first: dt.date = JAN_5,
    last: dt.date = JAN_5,
    abstract: str | None = "An abstract.",
) -> Paper:
    return Paper(pid, title, abstract, None, None, None, upvotes, arxiv, first, last)


def seed_listing(name: str) -> Listing:
    path = SEEDS / name
    return parse_dump(RawDump(str(path), path.read_bytes(), path.stat().st_mtime), D.fromisoformat(SEED_AS_OF[name]))


# --- the pure diff -------------------------------------------------------------------------


def test_new_papers_are_new() -> None:
    result = diff(listing(entry("Alpha", 1, upvotes=3), entry("Beta", 2)), [])
    assert [c.kind for c in result.changes] == ["new", "new"]
    assert result.changes[0].after.first_seen == D(2026, 1, 10)


def test_same_fields_are_unchanged_and_new_upvotes_are_an_update() -> None:
    known = [paper(1, "Alpha", upvotes=3), paper(2, "Beta", upvotes=1)]
    result = diff(listing(entry("Alpha", upvotes=3), entry("Beta", 2, upvotes=5)), known)
    assert [(c.kind, c.paper_id, c.fields) for c in result.changes] == [
        ("unchanged", 1, ()),
        ("updated", 2, ("upvotes",)),
    ]
    assert result.changes[1].after.upvotes == 5


def test_unknown_upvotes_never_overwrite_known() -> None:
    result = diff(listing(entry("Alpha", upvotes=None)), [paper(1, "Alpha", upvotes=7)])
    assert result.changes[0].kind == "unchanged"
    assert result.changes[0].after.upvotes == 7


def test_title_key_matches_across_case_and_punctuation() -> None:
    result = diff(listing(entry("ALPHA:  beta-gamma")), [paper(1, "Alpha: Beta Gamma")])
    assert result.changes[0].paper_id == 1


def test_paper_known_by_title_gains_its_arxiv_id() -> None:
    result = diff(listing(entry("Alpha", arxiv="2305.14314")), [paper(1, "Alpha")])
    change = result.changes[0]
    assert (change.kind, change.paper_id, change.fields) == ("updated", 1, ("arxiv_id",))
    assert change.after.arxiv_id == "2305.14314"


def test_title_only_entry_matches_a_paper_known_by_arxiv_id() -> None:
    result = diff(listing(entry("Alpha", upvotes=2)), [paper(1, "Alpha", arxiv="2305.14314", upvotes=2)])
    assert (result.changes[0].kind, result.changes[0].paper_id) == ("unchanged", 1)


def test_arxiv_id_wins_over_a_changed_title() -> None:
    result = diff(listing(entry("Alpha v2: renamed", arxiv="2305.14314")), [paper(1, "Alpha", arxiv="2305.14314")])
    change = result.changes[0]
    assert change.paper_id == 1 and "title" in change.fields
    assert change.title_key == "alpha v2 renamed"


def test_different_arxiv_ids_with_the_same_title_are_different_papers() -> None:
    result = diff(listing(entry("Introduction", arxiv="2401.00002")), [paper(1, "Introduction", arxiv="2401.00001")])
    assert result.changes[0].kind == "new"


def test_older_dump_only_fills_gaps_and_moves_first_seen_back() -> None:
    known = [paper(1, "Alpha", upvotes=9, abstract=None, first=D(2026, 1, 5), last=D(2026, 1, 5))]
    result = diff(listing(entry("Alpha", upvotes=2, abstract="Filled."), as_of=D(2026, 1, 1)), known)
    change = result.changes[0]
    assert change.after.upvotes == 9  # the newer count stays
    assert change.after.abstract == "Filled."
    assert change.after.first_seen == D(2026, 1, 1)
    assert change.after.last_seen == D(2026, 1, 5)
    assert set(change.fields) == {"abstract", "first_seen"}


def test_a_paper_listed_twice_in_one_dump_counts_once() -> None:
    result = diff(listing(entry("Alpha", 1, upvotes=4), entry("alpha", 2, upvotes=None, authors=3)), [])
    assert len(result.changes) == 1
    change = result.changes[0]
    assert (change.kind, change.position, change.upvotes) == ("new", 1, 4)
    assert change.after.authors == 3


def test_diff_does_not_modify_known() -> None:
    known = [paper(1, "Alpha", upvotes=1)]
    diff(listing(entry("Alpha", upvotes=5)), known)
    assert known[0].upvotes == 1


# --- apply: the store ----------------------------------------------------------------------


def test_seeds_ingest_counts_and_duplicate_dump(db_url: str) -> None:
    engine = open_engine(db_url)
    first = apply(engine, seed_listing("004_d0e4e6143df38525.txt"))
    assert (first.entries, first.new, first.updated, first.duplicate_dump) == (75, first.new, 0, False)
    assert first.new + first.unchanged == 75 and first.new > 60
    again = apply(engine, seed_listing("004_d0e4e6143df38525.txt"))
    assert again.duplicate_dump is True
    assert (again.new, again.updated, again.unchanged, again.entries) == (0, 0, first.new + first.unchanged, 75)


def test_all_seeds_twice_is_the_same_store_as_once(db_url: str) -> None:
    engine = open_engine(db_url)
    names = sorted(SEED_AS_OF, key=lambda n: SEED_AS_OF[n])
    for name in names:
        assert apply(engine, seed_listing(name)).duplicate_dump is False
    once = snapshot(db_url)
    for name in names:
        assert apply(engine, seed_listing(name)).duplicate_dump is True
    assert snapshot(db_url) == once
    assert len(once["dump"]) == 5
    titles = [row[3] for row in once["paper"]]
    assert len(titles) == len(set(titles))  # no paper stored twice


def test_upvote_history_is_kept_per_dump(db_url: str) -> None:
    engine = open_engine(db_url)
    apply(engine, listing(entry("Alpha", upvotes=1), as_of=D(2026, 1, 1), tag="a"))
    apply(engine, listing(entry("Alpha", upvotes=None), as_of=D(2026, 1, 2), tag="b"))
    result = apply(engine, listing(entry("Alpha", upvotes=6), as_of=D(2026, 1, 3), tag="c"))
    assert result.updated == 1
    assert [row[3] for row in table(db_url, "sighting")] == [1, None, 6]
    assert columns(db_url, "paper", "upvotes", "first_seen", "last_seen") == [(6, D(2026, 1, 1), D(2026, 1, 3))]


def test_first_ingest_is_recorded_with_its_backfill_flag(db_url: str) -> None:
    engine = open_engine(db_url)
    apply(engine, listing(entry("Old"), as_of=D(2025, 1, 1), tag="a"), backfill=True)
    apply(engine, listing(entry("Old"), entry("Fresh", 2), as_of=D(2026, 1, 1), tag="b"))
    flags = dict(columns(db_url, "paper", "title", "first_backfill"))
    first_dumps = dict(rows(db_url, "SELECT p.title, d.backfill FROM paper p JOIN dump d ON d.id = p.first_dump_id"))
    assert flags == first_dumps == {"Old": True, "Fresh": False}  # (SQLite's 1 and 0 equal True and False)


def test_title_then_arxiv_is_stored_once(db_url: str) -> None:
    engine = open_engine(db_url)
    apply(engine, listing(entry("QLoRA: Efficient Finetuning of Quantized LLMs", upvotes=3), tag="a"))
    result = apply(
        engine,
        listing(
            entry("QLoRA: Efficient Finetuning of Quantized LLMs", arxiv="2305.14314", upvotes=62),
            as_of=D(2026, 1, 11),
            tag="b",
        ),
    )
    assert (result.new, result.updated) == (0, 1)
    assert table(db_url, "paper", drop=("first_ingested_at",))[0][1] == "2305.14314"
    assert len(table(db_url, "paper")) == 1


def test_dry_run_writes_nothing(db_url: str) -> None:
    engine = open_engine(db_url)
    apply(engine, listing(entry("Alpha", upvotes=1), tag="a"))
    before = snapshot(db_url)
    result = apply(engine, listing(entry("Alpha", upvotes=2), entry("Beta", 2), tag="b"), dry_run=True)
    assert (result.new, result.updated, result.dry_run) == (1, 1, True)
    assert snapshot(db_url) == before


def test_a_failure_mid_dump_leaves_the_store_untouched(db_url: str) -> None:
    engine = open_engine(db_url)
    apply(engine, listing(entry("Alpha", upvotes=1), tag="a"))
    before = snapshot(db_url)

    @event.listens_for(engine, "before_cursor_execute")
    def fail_on_sightings(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO sighting"):
            raise OperationalError(statement, None, Exception("disk I/O error (simulated)"))

    with pytest.raises(StoreError, match="nothing was written"):
        apply(engine, listing(entry("Alpha", upvotes=5), entry("Beta", 2), tag="b"))
    assert snapshot(db_url) == before


@pytest.mark.sqlite_only
def test_the_store_uses_wal(db_url: str, tmp_path: Path) -> None:
    open_engine(db_url)
    with sqlite3.connect(tmp_path / "papers.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_store_itself_refuses_two_papers_known_only_by_the_same_title(db_url: str) -> None:
    """The last line of defence under the diff: (title key, arXiv id or '') is unique."""
    open_engine(db_url).dispose()
    day, moment = D(2026, 1, 10), dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    dump = {"id": 1, "content_hash": "h", "source": "s", "as_of": day, "layout": "full", "ingested_at": moment}
    counts = {"entries": 0, "new": 0, "updated": 0, "unchanged": 0}
    insert(db_url, "dump", dump | counts | {"backfill": False, "status": "ingested"})

    def paper(arxiv_id: str | None) -> None:
        values = {"arxiv_id": arxiv_id, "title_key": "alpha", "title": "Alpha", "first_seen": day, "last_seen": day}
        insert(db_url, "paper", values | {"first_dump_id": 1, "first_ingested_at": moment, "first_backfill": False})

    paper(None)
    paper("2401.00001")  # the same title with an arXiv id: another paper
    paper("2401.00002")
    with pytest.raises(IntegrityError):
        paper(None)
    with pytest.raises(IntegrityError):
        paper("2401.00001")
    assert len(table(db_url, "paper")) == 3


@pytest.mark.sqlite_only  # SQLite's query plan; PostgreSQL's planner picks by its statistics
def test_the_title_key_index_serves_the_lookups(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT id FROM paper WHERE title_key IN ('alpha', 'beta')")
        assert "uq_paper_title_key_arxiv" in str(plan.fetchall())  # the unique index also serves the lookups
