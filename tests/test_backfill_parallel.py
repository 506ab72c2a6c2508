"""Backfill parses ahead in a forked worker: same results, same order, bad dumps still reported,
and a dead worker costs nothing but speed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import io
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paperdigest.errors import EmptyListingError, ParseError
from paperdigest.ingest import ahead, job
from paperdigest.model import Entry, EntryRow, Listing, entry_values
from paperdigest.parse import parse_dump
from paperdigest.sources import files
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.terminal import progress_for
from tests.conftest import ROOT, SEEDS

COUNT = ahead.PARALLEL_MIN + 6
BROKEN = 7


def make_dumps(folder: Path) -> list[Path]:
    """COUNT dated dumps (the seeds, each made distinct), one of them binary garbage."""
    folder.mkdir()
    seeds = sorted(SEEDS.iterdir())
    paths = []
    for i in range(COUNT):
        path = folder / f"{dt.date(2026, 1, 1) + dt.timedelta(days=i)}_{i:02d}.txt"
        seed = seeds[i % len(seeds)].read_bytes()
        path.write_bytes(b"\x00\x01\xff garbage" if i == BROKEN else seed + b"\n" * i)
        paths.append(path)
    return paths


def outcome(parsed: Listing | Exception) -> Any:
    """What a parse gave, comparable whichever side parsed it: the worker's entries arrive as
    EntryRows (its transport), the in-process ones as Entry objects; each as its values."""
    if isinstance(parsed, Exception):
        return (type(parsed).__name__, str(parsed))
    return dataclasses.replace(parsed, entries=tuple(tuple(entry_values(e)) for e in parsed.entries))


PARSE_FILE = ahead.parse_file


def tag_with_pid(path: Path, as_of: dt.date | None, *cap: int) -> Listing | Exception:
    """parse_file, recording which process did the parsing in `layout`."""
    parsed = PARSE_FILE(path, as_of, *cap)
    return dataclasses.replace(parsed, layout=str(os.getpid())) if isinstance(parsed, Listing) else parsed


PARENT = os.getpid()


def die_in_the_worker_on_the_fifth(path: Path, as_of: dt.date | None, *cap: int) -> Listing | Exception:
    if os.getpid() != PARENT and path.name.endswith("_04.txt"):
        os._exit(9)  # the worker is killed mid-backfill (OOM killer, a segfault in a C library)
    return tag_with_pid(path, as_of, *cap)


@pytest.fixture
def dumps(tmp_path: Path) -> list[Path]:
    assert threading.active_count() == 1, "a thread leaked from another test: backfill would not fork"
    return make_dumps(tmp_path / "dumps")


def test_the_worker_parses_the_same_listings_in_the_same_order(dumps: list[Path]) -> None:
    assert ahead._can_fork_a_parser(len(dumps))
    forked = [(path, outcome(parsed)) for path, parsed in ahead.parsed_in_order(dumps, None)]
    here = [(path, outcome(ahead.parse_file(path, None))) for path in dumps]
    assert forked == here
    assert forked[BROKEN][1][0] == "ParseError" and str(dumps[BROKEN]) in forked[BROKEN][1][1]


def test_the_worker_s_entries_read_as_the_parsed_entries_do(dumps: list[Path]) -> None:
    """The transport: the writer gets EntryRows, each field read by name as from the Entry (what
    the diff and the topic index's upkeep do), the listing's other fields as parsed."""
    forked = [parsed for _, parsed in ahead.parsed_in_order(dumps, None) if isinstance(parsed, Listing)]
    here = [parsed for parsed in (ahead.parse_file(p, None) for p in dumps) if isinstance(parsed, Listing)]
    model = [parse_dump(files.read(p), None) for i, p in enumerate(dumps) if i != BROKEN]  # Entry objects
    assert len(forked) == len(here) == len(model) == COUNT - 1
    assert all(type(e) is Entry for listing in model for e in listing.entries)
    names = [f.name for f in dataclasses.fields(Entry)]
    for got, done_here, want in zip(forked, here, model, strict=True):
        assert all(type(e) is EntryRow for e in got.entries)
        for other in (got, done_here):
            assert [[getattr(e, n) for n in names] for e in other.entries] == [
                [getattr(e, n) for n in names] for e in want.entries
            ]
            assert (other.source, other.as_of, other.layout, other.content_hash, other.title_keys) == (
                want.source, want.as_of, want.layout, want.content_hash, want.title_keys
            )


def test_backfill_s_parse_makes_a_text_dump_s_entries_as_rows_of_the_same_values() -> None:
    """parse_dump(rows=True), backfill's parse: a text dump's entries are EntryRows (model.short_entry_row)
    of the values the Entry objects hold, every layout of the seeds; the other formats stay Entries."""
    layouts = set()
    for seed in sorted(SEEDS.iterdir()):
        raw = files.read(seed)
        rows, entries = parse_dump(raw, None, rows=True), parse_dump(raw, None)
        layouts.add(entries.layout)
        text = entries.layout in ("full", "pairs", "dense")
        assert all(type(e) is (EntryRow if text else Entry) for e in rows.entries)
        assert [tuple(entry_values(e)) for e in rows.entries] == [tuple(entry_values(e)) for e in entries.entries]
        assert dataclasses.replace(rows, entries=entries.entries) == entries
    assert {"full", "pairs", "dense"} <= layouts


def test_the_parsing_happens_in_another_process(dumps: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead, "parse_file", tag_with_pid)
    pids = {parsed.layout for _, parsed in ahead.parsed_in_order(dumps, None) if isinstance(parsed, Listing)}
    assert len(pids) == 1 and pids != {str(os.getpid())}


def test_few_dumps_are_parsed_in_process(dumps: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead, "parse_file", tag_with_pid)
    few = dumps[: ahead.PARALLEL_MIN - 1]
    pids = {parsed.layout for _, parsed in ahead.parsed_in_order(few, None) if isinstance(parsed, Listing)}
    assert pids == {str(os.getpid())}


def test_a_dead_worker_leaves_the_rest_to_this_process(dumps: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead, "parse_file", die_in_the_worker_on_the_fifth)
    results = list(ahead.parsed_in_order(dumps, None))
    assert [path for path, _ in results] == dumps  # every dump, once, in order
    pids = [parsed.layout for _, parsed in results if isinstance(parsed, Listing)]
    assert str(os.getpid()) in pids[4:] and pids[0] != str(os.getpid())  # the first were the worker's


def test_backfill_with_the_worker_stores_what_a_sequential_backfill_stores(
    dumps: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_store: Callable[..., str]
) -> None:
    def run(url: str) -> tuple[list[Any], dict[str, int], list[Any]]:
        engine = open_engine(url)
        outcomes = [
            (o.source, str(o.error)) if isinstance(o, job.Failure) else o.to_json()
            for o in job.backfill(engine, [str(tmp_path / "dumps")])
        ]
        with engine.connect() as conn:
            stored = queries.counts(conn), [p.to_json() for p in queries.top_papers(conn, None)]
        engine.dispose()
        return outcomes, *stored

    parallel = run(new_store())
    monkeypatch.setattr(ahead, "PARALLEL_MIN", 10**6)
    sequential = run(new_store())
    assert parallel == sequential
    assert len(parallel[0]) == COUNT and parallel[1]["dumps"] == len({p.read_bytes() for p in dumps}) - 1


@pytest.mark.parametrize(
    "error",
    [ParseError("d.txt", 12, "the meta block is cut off"), EmptyListingError("e.txt", None, "no entries")],
)
def test_parse_errors_cross_a_process_boundary_whole(error: ParseError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.source, copy.line, copy.reason) == (
        type(error),
        str(error),
        error.source,
        error.line,
        error.reason,
    )


ORPHAN_SCRIPT = """
import multiprocessing, sys, time
from pathlib import Path
from paperdigest.ingest import ahead
paths = sorted(Path(sys.argv[1]).iterdir())
results = ahead.parsed_in_order(paths, None)
next(results)  # the worker is running and parsing ahead
print(multiprocessing.active_children()[0].pid, flush=True)
time.sleep(60)
"""


def worker_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")  # exited, not yet reaped


def test_a_killed_backfill_leaves_no_parsing_worker_behind(dumps: list[Path], tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path / "dumps")], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    assert not worker_gone(pid)
    proc.kill()  # SIGKILL: no finally, no atexit in the parent
    proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while not worker_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker_gone(pid), "the parsing worker outlived its parent"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_on_a_terminal_starts_no_thread(dumps: list[Path]) -> None:
    """A redraw thread would make backfill parse in-process: the bar is redrawn per dump instead."""
    terminal = Terminal()
    with progress_for(terminal, enabled=True) as progress:
        assert progress.progress is not None  # a bar, since this is a terminal
        progress.start(len(dumps))
        progress.advance()
        assert threading.active_count() == 1 and ahead._can_fork_a_parser(len(dumps))
    assert "1/" in terminal.getvalue()


def test_both_kinds_of_entries_cross_the_pipe_as_their_values() -> None:
    """The wire: a text dump's EntryRows (copied by tuple()) and an API dump's Entry objects (read
    by attribute) each arrive as EntryRows of the values parsed, through a real pickle."""
    kinds = set()
    for seed in [*sorted(SEEDS.iterdir()), ROOT / "tests" / "fixtures" / "hf_daily_papers_2023-05.json"]:
        listing = ahead.parse_file(seed, None)
        if not isinstance(listing, Listing):
            continue
        kinds.add(type(listing.entries[0]))
        got = ahead._listing_of(pickle.loads(pickle.dumps(ahead._wire(listing), pickle.HIGHEST_PROTOCOL)))
        assert all(type(e) is EntryRow for e in got.entries)
        assert [tuple(entry_values(e)) for e in got.entries] == [tuple(entry_values(e)) for e in listing.entries]
        assert (got.source, got.as_of, got.layout, got.content_hash, got.title_keys) == (
            listing.source, listing.as_of, listing.layout, listing.content_hash, listing.title_keys
        )
    assert kinds == {Entry, EntryRow}


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="Linux: a pipe's size can be read and set")
def test_the_pipe_holds_several_listings() -> None:
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    try:
        before = fcntl.fcntl(reader.fileno(), fcntl.F_GETPIPE_SZ)
        ahead._widen(reader)
        after = fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ)  # one pipe: both ends see it
        cap = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert after == min(ahead._PIPE_BYTES, max(cap, before)) and after >= before
    finally:
        reader.close()
        writer.close()
