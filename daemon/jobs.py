"""The ingest and backfill jobs: sources -> parse -> ingest, with per-dump outcomes.

ingest:   parse every dump first; one bad dump refuses them all (the store is untouched)
backfill: oldest capture first; a bad dump is reported and the others go on
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from paperdigest.config import MAX_DUMP_BYTES, LimitsSettings
from paperdigest.errors import BadInputError, PaperdigestError, SourceError
from paperdigest.ingest import apply, reject
from paperdigest.model import DumpResult, Listing, Rejected
from paperdigest.parse import content_hash, parse_dump
from paperdigest.sources import files
from paperdigest.sources.http import fetch_dump, redact

log = logging.getLogger("paperdigest")


@dataclass(frozen=True, slots=True)
class Failure:
    source: str
    error: PaperdigestError


Outcome = DumpResult | Failure


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def rejected_file(path: Path, error: Exception, origin: str, as_of: dt.date, max_bytes: int) -> Rejected:
    """A refused dump file, known by its content hash (or by its path when it cannot be read, or
    is too large to be read)."""
    try:
        key = content_hash(files.read_capped(path, max_bytes).data)
    except (OSError, BadInputError):
        key = f"path:{path.absolute()}"
    return Rejected(origin, str(path), str(error), key, as_of)


def parse_paths(
    paths: list[str],
    as_of: dt.date | None,
    archive: bool = False,
    engine: Engine | None = None,
    limits: LimitsSettings | None = None,
) -> list[tuple[str, Listing]]:
    """Parse every dump named (files oldest capture first, then URLs), each with its origin (the
    file's folder, or the URL); the first bad one raises. With `engine`, the refusal is recorded
    there for `status`. A URL is fetched once; with `archive` its body is kept first."""
    limits = limits or LimitsSettings()
    local = [p for p in paths if not is_url(p)]
    listings = []
    for pending in files.order_by_capture(files.expand(local), as_of) if local else []:
        origin = files.origin_of(pending.path)
        try:
            listings.append((origin, parse_dump(files.read(pending.path, limits.max_dump_bytes), as_of)))
        except (BadInputError, SourceError) as exc:
            if engine is not None:
                reject(engine, rejected_file(pending.path, exc, origin, pending.as_of, limits.max_dump_bytes))
            raise
    for url in (p for p in paths if is_url(p)):
        listings.append((redact(url), parse_dump(fetch_dump(url, archive=archive, limits=limits), as_of)))
    return listings


def ingest(
    engine: Engine,
    paths: list[str],
    as_of: dt.date | None = None,
    dry_run: bool = False,
    limits: LimitsSettings | None = None,
) -> list[DumpResult]:
    listings = parse_paths(paths, as_of, archive=not dry_run, engine=None if dry_run else engine, limits=limits)
    return [apply(engine, listing, dry_run=dry_run, origin=origin) for origin, listing in listings]


def backfill(
    engine: Engine,
    paths: list[str],
    as_of: dt.date | None = None,
    on_start: Callable[[int], None] | None = None,
    max_bytes: int = MAX_DUMP_BYTES,
) -> Iterator[Outcome]:
    """Ingest many dumps as history: oldest capture first, bad dumps reported (and recorded for
    `status`), never fatal. A file larger than `max_bytes` is refused unread."""
    ordered = files.order_by_capture(files.expand(paths), as_of)
    captured = {p.path: p.as_of for p in ordered}
    if on_start is not None:
        on_start(len(ordered))
    for path, parsed in parsed_in_order([p.path for p in ordered], as_of, max_bytes):
        origin = files.origin_of(path)
        if isinstance(parsed, PaperdigestError):
            reject(engine, rejected_file(path, parsed, origin, captured[path], max_bytes))
            yield Failure(str(path), parsed)
            continue
        yield apply(engine, parsed, backfill=True, origin=origin)


PARALLEL_MIN = 16  # fewer dumps than this are parsed in-process: a worker costs more than it saves
_AHEAD = 4  # dumps parsed ahead of the writer: bounds the memory the worker can fill


def parse_file(path: Path, as_of: dt.date | None, max_bytes: int = MAX_DUMP_BYTES) -> Listing | PaperdigestError:
    """One dump file parsed, or the reason it cannot be (a bad dump is an outcome, not a crash)."""
    try:
        return parse_dump(files.read(path, max_bytes), as_of)
    except (BadInputError, SourceError) as exc:
        return exc


def parsed_in_order(
    paths: list[Path], as_of: dt.date | None, max_bytes: int = MAX_DUMP_BYTES
) -> Iterator[tuple[Path, Listing | PaperdigestError]]:
    """Every path with its parse, in the order given.

    Parsing is pure Python and the writes mostly wait on SQLite, so on a machine with a spare
    core a forked worker parses the next few dumps while this process writes the current one.
    Fork only: it is cheap (no re-import) and the child touches nothing but the files. It is
    not used when this process runs other threads (forking those is unsafe) or has one core.
    No helper threads on this side either (they would compete with the writer for the GIL):
    results come down a pipe, read by the caller's thread. If the worker dies, the rest is
    parsed here.
    """
    if not _can_fork_a_parser(len(paths)):
        yield from ((path, parse_file(path, as_of, max_bytes)) for path in paths)
        return
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    credits = context.Semaphore(_AHEAD)
    worker = context.Process(target=_parse_ahead, args=(paths, as_of, max_bytes, reader, writer, credits), daemon=True)
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
            yield path, parsed
    finally:
        reader.close()
        if worker.is_alive():
            worker.terminate()
        worker.join()


def _parse_ahead(
    paths: list[Path], as_of: dt.date | None, max_bytes: int, reader: Connection, writer: Connection, credits: Any
) -> None:
    """The worker: parse each path in order, at most _AHEAD ahead of the reader. It ends when
    the parent does: a write to a pipe nobody reads fails, and waiting for a credit checks
    that the parent is still there (a SIGKILLed parent leaves no worker behind)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
    reader.close()  # the parent's end: with it closed here, the parent's exit breaks our pipe
    parent = os.getppid()
    for path in paths:
        while not credits.acquire(timeout=1.0):
            if os.getppid() != parent:
                return
        try:
            writer.send(parse_file(path, as_of, max_bytes))
        except Exception:  # a bug or an unpicklable result: the parent parses the rest itself
            return


def _can_fork_a_parser(count: int) -> bool:
    return (
        count >= PARALLEL_MIN
        and (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )
