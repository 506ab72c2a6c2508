"""Backfill's parsing worker: on a machine with a spare core, a forked process parses the next
dumps while this one writes the current one (parse is pure Python; writes mostly wait on SQLite).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import marshal
import multiprocessing
import operator
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

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
    credits = context.Semaphore(_AHEAD)
    worker = context.Process(
        target=_parse_ahead, args=(paths, as_of, max_bytes, reader, writer, credits, topics), daemon=True
    )
    worker.start()
    writer.close()  # the worker holds the only writing end: its exit is our EOF
    try:
        for done, path in enumerate(paths):
            try:
                parsed = _decode(reader.recv_bytes())
            except (EOFError, OSError):
                worker.join(timeout=1)
                log.warning("the parsing worker stopped (exit %s); parsing the rest in this process", worker.exitcode)
                yield from ((p, parse_file(p, as_of, max_bytes)) for p in paths[done:])
                return
            credits.release()
            yield path, parsed
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
                # the keys go with the points: the writer needs both (without them it worked them out again)
                parsed = dataclasses.replace(parsed, title_keys=tuple(keys), topic_points=points)
            writer.send_bytes(_encode(parsed))
        except Exception:  # a bug or an unpicklable result: the parent parses the rest itself
            return


# A listing on the pipe: a tag byte, then its fields marshalled, the entries column by column
# (the values of each field as one tuple), dates as day ordinals. marshal reads and writes
# tuples of str/int/None in C with none of pickle's opcodes and memo; the columns are zipped back
# into EntryRows in C (tuple.__new__, no Python frame). A value marshal cannot carry (a datetime
# in a date field, a subclass) sends that listing pickled, the entries as plain tuples: the
# same values either way. bf6, in process on 200 full dumps: the worker's side 0.21 -> 0.11 ms
# a dump, the writer's 0.22 -> 0.19 ms (issue 13).
_MARSHALLED, _PICKLED = b"m", b"p"
_LISTING_FIELDS = tuple(f.name for f in dataclasses.fields(Listing))
_LISTING_VALUES = operator.attrgetter(*_LISTING_FIELDS)
_ENTRIES = _LISTING_FIELDS.index("entries")
_ENTRY_FIELDS = EntryRow._fields
_DATE_COLUMNS = tuple(_ENTRY_FIELDS.index(name) for name in ("published", "withdrawn_at"))
_entry_row = partial(tuple.__new__, EntryRow)
if _LISTING_FIELDS != ("source", "as_of", "layout", "content_hash", "entries", "title_keys", "topic_points"):
    raise AssertionError(f"Listing's fields changed, the wire (_marshalled) too: {_LISTING_FIELDS}")  # pragma: no cover


def _encode(parsed: Listing | PaperdigestError) -> bytes:
    if isinstance(parsed, Listing):
        try:
            return _MARSHALLED + _marshalled(parsed)
        except (ValueError, TypeError):  # a value marshal cannot carry: pickle this one
            values = list(_LISTING_VALUES(parsed))
            values[_ENTRIES] = tuple(map(entry_values, parsed.entries))
            return _PICKLED + pickle.dumps(tuple(values), pickle.HIGHEST_PROTOCOL)
    return _PICKLED + pickle.dumps(parsed, pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Listing | PaperdigestError:
    if data[:1] == _MARSHALLED:
        return _unmarshalled(marshal.loads(memoryview(data)[1:]))
    parsed = pickle.loads(memoryview(data)[1:])
    return _listing_of(parsed) if isinstance(parsed, tuple) else parsed


def _marshalled(listing: Listing) -> bytes:
    entries: tuple[Any, ...] = listing.entries
    if entries and (type(entries[0]) is not EntryRow or len(set(map(type, entries))) != 1):
        entries = tuple(map(entry_values, entries))  # Entry objects (an API dump's)
    columns = list(zip(*entries, strict=True))
    for n in _DATE_COLUMNS if columns else ():
        columns[n] = tuple(map(_ordinals(columns[n]).__getitem__, columns[n]))
    if type(listing.as_of) is not dt.date:
        raise TypeError("as_of is not a date")
    return marshal.dumps((listing.source, listing.as_of.toordinal(), listing.layout, listing.content_hash,
                          tuple(columns), listing.title_keys, listing.topic_points))


def _ordinals(dates: tuple[Any, ...]) -> dict[Any, int | None]:
    """Each distinct date's ordinal (a dump holds a few), None kept; TypeError for anything else."""
    out: dict[Any, int | None] = {None: None}
    for date in set(dates):
        if date is not None:
            if type(date) is not dt.date:  # a datetime would lose its time
                raise TypeError(f"not a date: {date!r}")
            out[date] = date.toordinal()
    return out


def _unmarshalled(values: tuple[Any, ...]) -> Listing:
    source, as_of, layout, content_hash, columns, title_keys, topic_points = values
    columns = list(columns)
    for n in _DATE_COLUMNS if columns else ():
        dates: dict[int | None, dt.date | None] = {o: dt.date.fromordinal(o) for o in set(columns[n]) if o is not None}
        dates[None] = None
        columns[n] = map(dates.__getitem__, columns[n])
    entries = tuple(map(_entry_row, zip(*columns, strict=True)))
    return Listing(source, dt.date.fromordinal(as_of), layout, content_hash, entries, title_keys, topic_points)


def _listing_of(values: tuple[Any, ...]) -> Listing:
    """The listing as the worker parsed it, its entries EntryRows (the writer reads them by attribute)."""
    fields = list(values)
    fields[_ENTRIES] = tuple(map(_entry_row, fields[_ENTRIES]))
    return Listing(*fields)


def _can_fork_a_parser(count: int) -> bool:
    return (
        count >= PARALLEL_MIN
        and (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )
