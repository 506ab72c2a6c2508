"""Backfill writes its dumps in groups (several in one transaction, the topic index kept once per
group, ingest/write.py Batch): the store it leaves is the one a transaction per dump leaves, a bad
dump in a group (one that does not parse, one the store refuses) costs the group nothing else, and
a killed backfill leaves whole dumps only, which a rerun completes. Both engines."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from paperdigest import topic_index
from paperdigest.config import embedded_default
from paperdigest.errors import ParseError, StoreError
from paperdigest.ingest import apply, job, write
from paperdigest.model import DumpResult, Listing
from paperdigest.store.engine import open_engine
from paperdigest.store.queries import _raw
from paperdigest.store.queries import topics as topic_queries
from tests.conftest import ROOT
from tests.storehelp import execute, rows, table
from tests.test_topic_index import _dumps, _entries, _rebuilt_entries, _same_as_the_scan, _settings

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HEADER = "new\n\nDaily Papers\n\nbyAK and the research community\n\n"
FIRST = dt.date(2026, 3, 2)
WORDS = ("agent", "web agent", "reasoning", "math", "GUI", "tool use", "policy", "model", "robot", "the", "plain")
REFUSED = "A paper the store refuses"


def _papers(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "title": f"{' '.join(rng.choice(WORDS).title() for _ in range(3))} number {i}",
            "abstract": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))),
            "upvotes": rng.randint(0, 30),
            "growth": rng.choice([0, 1, 2, 5]),
        }
        for i in range(count)
    ]


def _render(capture: dt.date, shown: list[tuple[dict[str, Any], int]]) -> str:
    """A dump in the "full" text layout: title, abstract, organisation, date and upvotes."""
    parts = [HEADER, f"{MONTHS[capture.month - 1]} {capture.day}\n\n"]
    for paper, upvotes in shown:
        parts.append(f"{paper['title']}\n\n{paper['abstract']}\n\nallenai Ai2\n·\n"
                     f"{MONTHS[capture.month - 1]} {capture.day} {upvotes}\n\n")
    return "".join(parts)


def write_dumps(folder: Path, count: int, size: int, seed: int = 5, refused_in: int | None = None) -> list[Path]:
    """`count` dated dumps, each with size/2 papers first listed that day and papers of the last
    five dumps again, their upvotes grown, now and then a new abstract. With `refused_in`, that
    dump also lists the paper REFUSED (a paper the tests' trigger refuses)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    papers = _papers(count * size // 2, seed)
    paths = []
    for day in range(count):
        new = papers[day * size // 2:(day + 1) * size // 2]
        recent = papers[max(0, (day - 5) * size // 2):day * size // 2]
        again = rng.sample(recent, min(len(recent), size - len(new)))
        for paper in again:
            if rng.random() < 0.1:
                paper["abstract"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        shown = [(p, p["upvotes"] + p["growth"] * day) for p in new + again]
        if day == refused_in:
            shown.append(({"title": REFUSED, "abstract": "plain"}, 1))
        capture = FIRST + dt.timedelta(days=day)
        path = folder / f"{capture.isoformat()}.txt"
        path.write_text(_render(capture, shown), encoding="utf-8")
        paths.append(path)
    return paths


def stored(url: str) -> dict[str, Any]:
    """The store as the ingest leaves it, without the moments of ingest (they differ by run)."""
    return {
        "paper": table(url, "paper", drop=("first_ingested_at",)),
        "dump": table(url, "dump", drop=("ingested_at",)),
        "sighting": table(url, "sighting"),
        "paper_topic": table(url, "paper_topic"),
    }


def by_identity(url: str) -> dict[str, Any]:
    """The store without its ids (a rolled-back group leaves gaps in PostgreSQL's sequences)."""
    return {
        "paper": rows(url, "SELECT title_key, title, abstract, upvotes, first_seen, last_seen FROM paper "
                           "ORDER BY title_key"),
        "dump": rows(url, "SELECT content_hash, as_of, entries, new, updated, unchanged FROM dump ORDER BY as_of"),
        "sighting": rows(url, "SELECT d.as_of, p.title_key, s.position, s.upvotes FROM sighting s "
                              "JOIN dump d ON d.id = s.dump_id JOIN paper p ON p.id = s.paper_id "
                              "ORDER BY d.as_of, s.position"),
    }


def whole_dumps_only(url: str) -> int:
    """Every stored dump has a sighting for each of its entries; how many dumps are stored."""
    counts = rows(url, "SELECT d.entries, COUNT(s.dump_id) FROM dump d LEFT JOIN sighting s ON s.dump_id = d.id "
                       "GROUP BY d.id, d.entries")
    assert all(entries == sighted for entries, sighted in counts), counts
    return len(counts)


def indexed(url: str) -> Engine:
    engine = open_engine(url)
    topic_index.ensure(engine, _settings())
    return engine


def outcomes(engine: Engine, folder: Path) -> list[Any]:
    return [(o.source, str(o.error)) if isinstance(o, job.Failure) else o.to_json()
            for o in job.backfill(engine, [str(folder)])]


# --- the same store -----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["oldest first", "shuffled"])
def test_a_group_stores_what_one_transaction_per_dump_stores(new_store: Callable[..., str], order: str) -> None:
    """New papers, upvotes that moved, texts that changed, an older dump that only fills gaps,
    the same dump twice: written in groups of 5, as a transaction per dump writes them."""
    listings: list[Listing] = _dumps(seed=31, count=14, size=40)
    listings.insert(9, listings[6])  # the same bytes again, in another group
    if order == "shuffled":
        random.Random(2).shuffle(listings)
    one_by_one, grouped = new_store(), new_store()

    engine = indexed(one_by_one)
    expected = [apply(engine, listing, backfill=True) for listing in listings]
    engine.dispose()

    engine = indexed(grouped)
    results: list[DumpResult] = []
    for start in range(0, len(listings), 5):
        batch = write.Batch(engine)
        for listing in listings[start:start + 5]:
            batch.add(listing)
        results += batch.commit()
    assert results == expected and sum(r.duplicate_dump for r in results) == 1
    assert stored(grouped) == stored(one_by_one)
    assert _entries(engine) == _rebuilt_entries(engine, _settings())
    _same_as_the_scan(engine, _settings())
    engine.dispose()


def test_a_backfill_in_groups_stores_what_ingest_stores_dump_by_dump(
    new_store: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_dumps(tmp_path / "dumps", count=23, size=30)
    paths[11].write_bytes(b"\x00\x01 not a listing")  # mid-group: its group is committed first
    monkeypatch.setattr(write, "GROUP_DUMPS", 4)
    monkeypatch.setattr(write, "GROUP_SECONDS", 3600.0)  # groups by count alone, whatever the machine's load
    one_by_one, grouped = new_store(), new_store()

    engine = indexed(one_by_one)
    expected: list[Any] = []
    for path in paths:
        try:
            (_, listing), = job.parse_paths([str(path)], None)
        except ParseError as exc:  # the bad dump: what backfill reports of it
            expected.append((str(path), str(exc)))
            continue
        expected.append(apply(engine, listing, backfill=True).to_json())
    engine.dispose()

    engine = indexed(grouped)
    commits, rekeys = [0], [0]
    event.listen(engine, "commit", lambda conn: commits.__setitem__(0, commits[0] + 1))
    rescore = topic_queries.rescore_entries
    monkeypatch.setattr(topic_queries, "rescore_entries",
                        lambda conn, values: (rekeys.__setitem__(0, rekeys[0] + 1), rescore(conn, values))[1])
    assert outcomes(engine, tmp_path / "dumps") == expected
    engine.dispose()
    # Groups 0-3, 4-7, 8-10 (ended by the bad dump), 12-15, 16-19, 20-22: a commit each, and the
    # refusal's and the settling's; one re-key per group at most (dump by dump: one per dump).
    assert commits[0] == 6 + 2 and 0 < rekeys[0] <= 6
    assert stored(grouped) == stored(one_by_one)
    assert whole_dumps_only(grouped) == len(paths) - 1
    assert rows(grouped, "SELECT file FROM rejection") == [(str(paths[11]),)]


@pytest.mark.sqlite_only  # PostgreSQL draws them from the sequence (queries/_raw.py insert_papers)
def test_new_papers_get_the_ids_the_database_would_give_them(
    new_store: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest names each new paper's id (the largest plus one, row after row, in
    one executemany): the same store as letting SQLite choose them (INSERT ... RETURNING a row,
    what it falls back to next to the largest rowid), ids included, after a refused dump too."""
    write_dumps(tmp_path / "dumps", count=9, size=24, refused_in=4)
    monkeypatch.setattr(write, "GROUP_DUMPS", 3)
    monkeypatch.setattr(write, "GROUP_SECONDS", 3600.0)
    named, chosen = new_store(), new_store()
    for url, last in ((named, _raw._SQLITE_LAST_ROWID), (chosen, 0)):  # 0: SQLite chooses every id
        monkeypatch.setattr(_raw, "_SQLITE_LAST_ROWID", last)
        engine = indexed(url)
        refuse_a_title(url)
        with pytest.raises(StoreError):
            outcomes(engine, tmp_path / "dumps")
        accept_it(url)
        outcomes(engine, tmp_path / "dumps")
        engine.dispose()
    assert stored(named) == stored(chosen)
    assert rows(named, "SELECT count(*), min(id), max(id) FROM paper") == [(9 * 24 // 2 + 1, 1, 9 * 24 // 2 + 1)]


def test_the_collector_runs_less_often_while_a_backfill_runs_and_as_before_after(
    new_store: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dumps(tmp_path / "dumps", count=6, size=10, refused_in=4)
    monkeypatch.setattr(write, "GROUP_DUMPS", 2)
    before = gc.get_threshold()
    url = new_store()
    engine = indexed(url)
    refuse_a_title(url)
    seen = []
    with pytest.raises(StoreError):  # ended by an error: restored all the same
        for _ in job.backfill(engine, [str(tmp_path / "dumps")]):
            seen.append(gc.get_threshold())
    assert gc.get_threshold() == before
    accept_it(url)
    for _ in job.backfill(engine, [str(tmp_path / "dumps")]):
        seen.append(gc.get_threshold())
    engine.dispose()
    assert len(seen) == 4 + 6 and set(seen) == {(job.GC_YOUNG, *before[1:])} and before[0] < job.GC_YOUNG
    assert gc.get_threshold() == before


# --- a dump the store refuses -------------------------------------------------------------------


def refuse_a_title(url: str) -> None:
    if url.startswith("sqlite"):
        execute(url, f"CREATE TRIGGER refuse BEFORE INSERT ON paper WHEN NEW.title = '{REFUSED}' "
                     "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        return
    execute(url, "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                 f"IF NEW.title = '{REFUSED}' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                 "RETURN NEW; END $$ LANGUAGE plpgsql")
    execute(url, "CREATE TRIGGER refuse BEFORE INSERT ON paper FOR EACH ROW EXECUTE FUNCTION refuse()")


def accept_it(url: str) -> None:
    execute(url, "DROP TRIGGER refuse" if url.startswith("sqlite") else "DROP TRIGGER refuse ON paper")


@pytest.mark.parametrize("refused", [6, 7])  # mid-group, and its group's last (groups of 4: 4..7)
def test_a_dump_the_store_refuses_leaves_the_others_of_its_group_stored(
    new_store: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: int
) -> None:
    """The group is rolled back and redone a dump per transaction: the dumps before the refused
    one are stored and reported, the refusal ends the backfill as it would dump by dump, and a
    rerun once the store takes it stores the rest (the stored ones are known by their hash)."""
    paths = write_dumps(tmp_path / "dumps", count=12, size=20, refused_in=refused)
    monkeypatch.setattr(write, "GROUP_DUMPS", 4)
    url, reference = new_store(), new_store()
    engine = indexed(url)
    refuse_a_title(url)
    given = []
    with pytest.raises(StoreError, match="refused by the test"):
        for outcome in job.backfill(engine, [str(tmp_path / "dumps")]):
            given.append(outcome)
    assert [r.as_of for r in given] == [FIRST + dt.timedelta(days=n) for n in range(refused)]
    assert not any(r.duplicate_dump for r in given)
    assert whole_dumps_only(url) == refused
    assert rows(url, "SELECT COUNT(*) FROM paper WHERE title = :t", t=REFUSED) == [(0,)]

    accept_it(url)
    again = outcomes(engine, tmp_path / "dumps")
    assert [o["duplicate_dump"] for o in again] == [True] * refused + [False] * (len(paths) - refused)
    assert _entries(engine) == _rebuilt_entries(engine, _settings())
    engine.dispose()

    engine = indexed(reference)
    outcomes(engine, tmp_path / "dumps")
    engine.dispose()
    assert by_identity(url) == by_identity(reference)
    assert whole_dumps_only(url) == len(paths)


# --- a killed backfill --------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_backfill_leaves_whole_dumps_and_a_rerun_completes_it(db_url: str, tmp_path: Path, sig: int) -> None:
    """The real command, killed (SIGKILL, SIGTERM) once it has reported its first group: the dumps it
    reported are stored, every stored dump is whole, the group in flight is not stored; a rerun
    stores the rest, and the store is the one an uninterrupted backfill makes."""
    paths = write_dumps(tmp_path / "dumps", count=240, size=40)
    command = [sys.executable, "-m", "paperdigest", "--db", db_url, "backfill", str(tmp_path / "dumps"), "--json"]
    unbuffered = dict(os.environ, PYTHONUNBUFFERED="1")  # each line in the pipe as it is printed
    proc = subprocess.Popen(command, cwd=ROOT, env=unbuffered, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    reported = [json.loads(proc.stdout.readline())]
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == -sig
    reported += [json.loads(line) for line in proc.stdout.read().splitlines()]  # what it printed before the kill
    proc.stdout.close()
    engine = open_engine(db_url)  # a first history load, killed: its index unbuilt, never stale
    with engine.connect() as conn:
        assert topic_index.stored_spec(conn) is None and not _entries(engine)
    engine.dispose()

    stored_dumps = whole_dumps_only(db_url)
    assert len(reported) <= stored_dumps < len(paths)  # killed mid-run, every reported dump stored
    as_of = {r[0] for r in rows(db_url, "SELECT as_of FROM dump")}
    assert {r["as_of"] for r in reported} <= {str(d) for d in as_of}

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    lines = [json.loads(line) for line in rerun.stdout.splitlines()]
    assert sum(line["duplicate_dump"] for line in lines) == stored_dumps and len(lines) == len(paths)
    assert whole_dumps_only(db_url) == len(paths)
    engine = open_engine(db_url)  # the command built the index for its config, the embedded default
    assert _entries(engine) and _entries(engine) == _rebuilt_entries(engine, embedded_default())
    engine.dispose()


# --- a first history load: the topic index built once, at the end --------------------------------


def _backfill_command(db_url: str, folder: Path) -> list[str]:
    return [sys.executable, "-m", "paperdigest", "--db", db_url, "backfill", str(folder), "--json"]


def built_after_every_dump(url: str) -> bool:
    """The topic index was (last) built after the last dump was written."""
    return bool(rows(url, "SELECT (SELECT built_at FROM topic_index) >= (SELECT MAX(ingested_at) FROM dump)")[0][0])


def test_a_first_history_load_builds_the_topic_index_once_at_the_end(db_url: str, tmp_path: Path) -> None:
    """The real command into a store with no papers: no upkeep per group (the index is left unbuilt
    while the dumps are written), then one first build over every paper it stored, whose entries
    are the ones a rebuild from scratch makes; a second backfill into the now filled store keeps
    the index per group (its first build is not redone)."""
    write_dumps(tmp_path / "dumps", count=40, size=40)
    done = subprocess.run(_backfill_command(db_url, tmp_path / "dumps"), cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    papers = rows(db_url, "SELECT COUNT(*) FROM paper")[0][0]
    assert papers > 0
    assert built_after_every_dump(db_url)
    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert topic_index.stored_spec(conn) == topic_index.settings_spec(embedded_default())
    built = _entries(engine)
    assert built and built == _rebuilt_entries(engine, embedded_default())

    write_dumps(tmp_path / "more", count=20, size=40, seed=6)
    again = subprocess.run(_backfill_command(db_url, tmp_path / "more"), cwd=ROOT, capture_output=True, text=True,
                           timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert not built_after_every_dump(db_url)  # kept per group, not built again
    assert rows(db_url, "SELECT COUNT(*) FROM paper")[0][0] > papers
    assert _entries(engine) == _rebuilt_entries(engine, embedded_default())
    engine.dispose()


def test_only_an_empty_store_s_index_waits_for_the_end(db_url: str, tmp_path: Path) -> None:
    """defer_first_build: an empty store's index built for these settings is unbuilt (and said so);
    one built for another config, or any store with papers, is left as it is."""
    engine = open_engine(db_url)
    assert topic_index.ensure(engine, _settings())  # another config's index, on an empty store
    assert not topic_index.defer_first_build(engine, embedded_default())
    with engine.connect() as conn:
        assert topic_index.stored_spec(conn) == topic_index.settings_spec(_settings())
    assert topic_index.defer_first_build(engine, _settings())
    with engine.connect() as conn:
        assert topic_index.stored_spec(conn) is None and not _entries(engine)
    assert topic_index.defer_first_build(engine, _settings())  # still empty, still unbuilt
    write_dumps(tmp_path / "dumps", count=2, size=10)
    assert all(not isinstance(o, job.Failure) for o in job.backfill(engine, [str(tmp_path / "dumps")]))
    assert topic_index.ensure(engine, _settings())
    assert not topic_index.defer_first_build(engine, _settings())  # papers now: kept per group
    with engine.connect() as conn:
        assert topic_index.stored_spec(conn) == topic_index.settings_spec(_settings())
    assert _entries(engine)
    engine.dispose()
