"""Backfill's parsing worker: on a machine with a spare core, a forked process parses the next
dumps while this one writes the current one (parse is pure Python; writes mostly wait on SQLite).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import multiprocessing
import operator
import os
import signal
import threading
from collections.abc import Iterator
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover  (not on Windows, where the worker is not forked either)
    fcntl = None  # type: ignore[assignment]

from paperdigest.config import MAX_DUMP_BYTES
from paperdigest.errors import BadInputError, PaperdigestError, SourceError
from paperdigest.ingest.identity import title_key
from paperdigest.model import EntryRow, Listing, entry_values
from paperdigest.parse import parse_dump
from paperdigest.sources import files
from paperdigest.topic_index import EntryMatcher, Spec

log = logging.getLogger("paperdigest")

PARALLEL_MIN = 16  # fewer dumps than this are parsed in-process: a worker costs more than it saves
_AHEAD = 4  # dumps parsed ahead of the writer: bounds the memory the worker can fill
_PIPE_BYTES = 1 << 20  # the pipe's room: _AHEAD full dumps' listings and more (Linux's default cap for a user)


def parse_file(path: Path, as_of: dt.date | None, max_bytes: int = MAX_DUMP_BYTES) -> Listing | PaperdigestError:
    """One dump file parsed, or the reason it cannot be (a bad dump is an outcome, not a crash).
    A text dump's entries are EntryRows (parse_dump's `rows`): this is the backfill's parse, and
    only its writer reads them, as it reads those that cross from the worker."""
    try:
        return parse_dump(files.read(path, max_bytes), as_of, rows=True)
    except (BadInputError, SourceError) as exc:
        return exc


def parsed_in_order(
    paths: list[Path], as_of: dt.date | None, max_bytes: int = MAX_DUMP_BYTES, topics: Spec | None = None
) -> Iterator[tuple[Path, Listing | PaperdigestError]]:
    """Every path with its parse, in the order given.

    Parsing is pure Python and the writes mostly wait on SQLite, so on a machine with a spare
    core a forked worker parses the next few dumps while this process writes the current one.
    Fork only: it is cheap (no re-import) and the child touches nothing but the files. It is
    not used when this process runs other threads (forking those is unsafe) or has one core.
    No helper threads on this side either (they would compete with the writer for the GIL):
    results come down a pipe, read by the caller's thread. If the worker dies, the rest is
    parsed here.

    With `topics` (the spec the store's topic index is built for, read before the fork), the
    worker also matches each entry against it (Listing.topic_points): on two cores the writer
    then only inserts the index's entries. The writer checks the spec is still the stored one.
    """
    if not _can_fork_a_parser(len(paths)):
        yield from ((path, parse_file(path, as_of, max_bytes)) for path in paths)
        return
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    _widen(reader)
    credits = context.Semaphore(_AHEAD)
    worker = context.Process(
        target=_parse_ahead, args=(paths, as_of, max_bytes, reader, writer, credits, topics), daemon=True
    )
    worker.start()
    writer.close()  # the worker holds the only writing end: its exit is our EOF
    try:
        for done, path in enumerate(paths):
            try:
                parsed = reader.recv()
            except (EOFError, OSError):
                worker.join(timeout=1)
                log.warning("the parsing worker stopped (exit %s); parsing the rest in this process", worker.exitcode)
                yield from ((p, parse_file(p, as_of, max_bytes)) for p in paths[done:])
                return
            credits.release()
            yield path, _listing_of(parsed) if isinstance(parsed, tuple) else parsed
    finally:
        reader.close()
        if worker.is_alive():
            worker.terminate()
        worker.join()


def _parse_ahead(
    paths: list[Path], as_of: dt.date | None, max_bytes: int, reader: Connection, writer: Connection, credits: Any,
    topics: Spec | None = None,
) -> None:
    """The worker: parse each path in order, at most _AHEAD ahead of the reader. It ends when
    the parent does: a write to a pipe nobody reads fails, and waiting for a credit checks
    that the parent is still there (a SIGKILLed parent leaves no worker behind)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
    reader.close()  # the parent's end: with it closed here, the parent's exit breaks our pipe
    parent = os.getppid()
    matcher = EntryMatcher(topics) if topics is not None and topics.topics else None
    for path in paths:
        while not credits.acquire(timeout=1.0):
            if os.getppid() != parent:
                return
        try:
            parsed = parse_file(path, as_of, max_bytes)
            if matcher is not None and isinstance(parsed, Listing):
                keys = parsed.title_keys or [title_key(e.title) for e in parsed.entries]
                points = (matcher.spec.fingerprint, matcher.points(parsed.entries, keys))
                parsed = dataclasses.replace(parsed, topic_points=points)
            writer.send(_wire(parsed) if isinstance(parsed, Listing) else parsed)
        except Exception:  # a bug or an unpicklable result: the parent parses the rest itself
            return


# A listing on the pipe: its fields in order, the entries as plain tuples of their values
# (model.EntryRow). Unpickling 200 Entry objects cost the writer about 0.5 ms a dump; these tuples,
# 0.06 ms, and wrapping each in an EntryRow is a C call (tuple.__new__), no Python frame.
# Measured in bf6 (issue 13; in process, 400 full dumps, the backfill's collector threshold):
# pickle (protocol 5) of these tuples, the worker's side and the writer's, 0.16 + 0.17 ms a
# dump; the EntryRows copied by tuple() rather than read by attrgetter, 0.18 -> 0.155 ms on the
# worker's side. marshal of the entries column by column (dates as ordinals) came to the same
# sum, 0.14 + 0.18 ms, with more code: not kept. What is left is making the objects, not the
# format.
_LISTING_FIELDS = tuple(f.name for f in dataclasses.fields(Listing))
_LISTING_VALUES = operator.attrgetter(*_LISTING_FIELDS)
_ENTRIES = _LISTING_FIELDS.index("entries")
_entry_row = partial(tuple.__new__, EntryRow)


def _wire(listing: Listing) -> tuple[Any, ...]:
    values = list(_LISTING_VALUES(listing))
    entries: tuple[Any, ...] = listing.entries
    try:  # a text dump's entries are EntryRows already: each copied as a plain tuple, in C
        values[_ENTRIES] = tuple(map(tuple, entries))
    except TypeError:  # Entry objects (an API dump's): their values by attribute
        values[_ENTRIES] = tuple(map(entry_values, entries))
    return tuple(values)


def _listing_of(values: tuple[Any, ...]) -> Listing:
    """The listing as the worker parsed it, its entries EntryRows (the writer reads them by attribute)."""
    fields = list(values)
    fields[_ENTRIES] = tuple(map(_entry_row, fields[_ENTRIES]))
    return Listing(*fields)


def _widen(end: Connection) -> None:
    """The pipe made room for the listings the worker may be ahead by (a full dump is about 80 kB
    pickled; the default pipe holds 64 kB): the worker writes each one without waiting for the
    writer to read, in fewer pieces. About 50 ms less CPU over 2,000 such messages, the two
    processes together (bf6, a two-process test of the pipe alone). Linux only, and best effort:
    a system may cap pipes lower (fs.pipe-max-size), which costs only that."""
    setter = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setter is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(end.fileno(), setter, _PIPE_BYTES)


def _can_fork_a_parser(count: int) -> bool:
    return (
        count >= PARALLEL_MIN
        and (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )
