"""The ingest jobs: sources -> parse -> diff -> store, for the commands and the daemon's polls.

    ingest SOURCES:   parse every dump first; one bad dump refuses them all (the store untouched)
    backfill PATHS:   oldest capture first; a bad dump is reported and the others go on
    backfill a source by day, FROM..TO: oldest first, each day fetched, archived and stored as
                      history; days already ingested skipped (unless refreshed): resumable
    poll a source:    fetched = source.fetch(memory)            # sources/: fetching only
                      for each dump: parse, apply, then settle its file (processed/ or rejected/)
                      record refusals and the source's state    # what `status` reads

The sources never see the store or the parser; this module is the one place that joins them.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from paperdigest import clock, topic_index
from paperdigest.config import MAX_DUMP_BYTES, LimitsSettings, Settings
from paperdigest.errors import (
    BadInputError,
    EmptyListingError,
    PaperdigestError,
    SourceError,
    StoreError,
    UsageError,
)
from paperdigest.ingest.ahead import parsed_in_order
from paperdigest.ingest.write import Batch, apply, reject, settle_rejections
from paperdigest.model import DumpResult, Fetched, Found, Listing, PollResult, Rejected, SourceMemory
from paperdigest.parse import content_hash, parse_dump
from paperdigest.sources import Source, files
from paperdigest.sources.http import fetch_dump, redact
from paperdigest.sources.huggingface import HuggingFaceSource
from paperdigest.store import queries
from paperdigest.store.engine import describe
from paperdigest.topic_index import Spec

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


# --- the commands ----------------------------------------------------------------------------------


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
        raw = fetch_dump(url, archive=archive, limits=limits)
        try:
            listings.append((redact(url), parse_dump(raw, as_of)))
        except BadInputError as exc:
            if engine is not None:  # fetched but not a listing: refused, as a file would be, for `status`
                captured = as_of or clock.today()
                reject(engine, Rejected(redact(url), raw.source, str(exc), content_hash(raw.data), captured))
            raise
    return listings


def ingest(
    engine: Engine,
    paths: list[str],
    as_of: dt.date | None = None,
    dry_run: bool = False,
    limits: LimitsSettings | None = None,
) -> list[DumpResult]:
    listings = parse_paths(paths, as_of, archive=not dry_run, engine=None if dry_run else engine, limits=limits)
    results = [(origin, apply(engine, listing, dry_run=dry_run)) for origin, listing in listings]
    for origin in dict.fromkeys(origin for origin, _ in results):
        settle_rejections(engine, origin, [result for o, result in results if o == origin])
    return [result for _, result in results]


def backfill(
    engine: Engine,
    paths: list[str],
    as_of: dt.date | None = None,
    on_start: Callable[[int], None] | None = None,
    max_bytes: int = MAX_DUMP_BYTES,
) -> Iterator[Outcome]:
    """Ingest many dumps as history: oldest capture first, bad dumps reported (and recorded for
    `status`), never fatal. A file larger than `max_bytes` is refused unread.

    The good dumps are written in groups (write.Batch: up to GROUP_DUMPS consecutive dumps, or
    GROUP_SECONDS of writing, in one transaction), each dump's outcome given once its group has
    committed, in order. A dump that does not parse ends its group first (committed, given), then
    is refused. A group the store refuses is rolled back and redone one dump per transaction, as
    `ingest` stores them: the dumps before the refused one are stored and given, and its
    StoreError ends the backfill, as it would have dump by dump. Killed mid-group, the group's
    dumps are not stored (nor given); a rerun stores them (those stored are known by their hash)."""
    ordered = files.order_by_capture(files.expand(paths), as_of)
    # What is loaded by now lives as long as the process: frozen, no collection walks it again,
    # and the parsing worker forked below does not copy its pages by touching their GC headers.
    gc.freeze()
    if on_start is not None:
        on_start(len(ordered))
    with collected_less():
        yield from _backfill_files(engine, ordered, as_of, max_bytes)


def _backfill_files(
    engine: Engine, ordered: list[files.Pending], as_of: dt.date | None, max_bytes: int
) -> Iterator[Outcome]:
    """backfill's body: the dumps parsed, written in groups, refused; the refusals settled."""
    captured = {p.path: p.as_of for p in ordered}
    stored: dict[str, list[DumpResult]] = {}  # by origin: what settles earlier refusals, at the end
    group: Batch | None = None
    origins: list[str] = []  # of the group's dumps

    def given(results: Iterable[DumpResult]) -> Iterator[Outcome]:
        for origin, result in zip(origins, results, strict=False):
            stored.setdefault(origin, []).append(result)
            yield result
        origins.clear()

    def one_by_one(listings: list[Listing]) -> Iterator[DumpResult]:
        """A refused group's dumps, one per transaction: a StoreError here ends the backfill."""
        return (apply(engine, listing, backfill=True) for listing in listings)

    def committed() -> Iterator[Outcome]:
        nonlocal group
        if group is None:
            return
        done, group = group, None
        try:
            results: Iterable[DumpResult] = done.commit()
        except StoreError:
            results = one_by_one(done.listings)
        yield from given(results)

    try:
        for path, parsed in parsed_in_order([p.path for p in ordered], as_of, max_bytes, _index_spec(engine)):
            origin = files.origin_of(path)
            if isinstance(parsed, PaperdigestError):
                yield from committed()
                reject(engine, rejected_file(path, parsed, origin, captured[path], max_bytes))
                yield Failure(str(path), parsed)
                continue
            if group is None:
                group = Batch(engine, backfill=True)
            origins.append(origin)
            try:
                group.add(parsed)
            except StoreError:  # rolled back: redone one dump per transaction
                redo, group = group.listings, None
                yield from given(one_by_one(redo))
                continue
            if group.full:
                yield from committed()
        yield from committed()
    finally:
        if group is not None:
            group.close()
    for origin, results in stored.items():
        settle_rejections(engine, origin, results)


GC_YOUNG = 50_000  # the collector's first threshold while a backfill runs (collected_less)


@contextmanager
def collected_less() -> Iterator[None]:
    """The cyclic garbage collector run less often, for a backfill's dumps (and its first build
    of the topic index): a dump's listing, diff and rows are some thousands of container objects,
    all freed by their reference counts, which the default threshold (a collection of the young
    generation once allocations outnumber frees by 700) had the collector walk several times a
    dump: 0.56 s of CPU in 4,861 collections over the full benchmark's 2,000 dumps, 0.04 s in 3
    at 50,000 (gc.callbacks, in process). The threshold is restored after."""
    threshold = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _index_spec(engine: Engine) -> Spec | None:
    """What the store's topic index is built for, for the parsing worker to match entries against
    (None: the writer matches them). Each dump's write checks it is still what the store holds."""
    try:
        with engine.connect() as conn:
            return topic_index.stored_spec(conn)
    except SQLAlchemyError as exc:
        log.debug("the topic index's spec could not be read before the backfill: %s", describe(exc))
        return None


@dataclass(frozen=True, slots=True)
class DayOutcome:
    """A day of a backfill by source that stored nothing: `skipped` (ingested before), or `empty`
    (the API featured no papers that day)."""

    day: dt.date
    what: str  # "skipped" | "empty"


def backfill_source(
    engine: Engine,
    settings: Settings,
    name: str,
    first: dt.date,
    last: dt.date,
    refresh: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> Iterator[Outcome | DayOutcome]:
    """History from a source fetched by day: every day from `first` to `last`, oldest first, fetched
    (archived) and stored as a backfill (never "new"). Days with a dump from this source already
    stored are skipped unless `refresh`, so an interrupted run goes on where it stopped. A day that
    cannot be fetched ends the run (SourceError) with the days before it stored."""
    source = _day_source(settings, name)
    today = clock.today()
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    if last > today:
        raise UsageError(f"--to {last} is after today ({today}, UTC): those days have no listing yet")
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    done = set() if refresh else _days_stored(engine, source, first, last)
    if on_start is not None:
        on_start(len(days))
    stored: list[DumpResult] = []
    try:
        for day in days:
            if day in done:
                yield DayOutcome(day, "skipped")
                continue
            listing = source.fetch_day(day, clock.now())
            if listing.found is None:
                yield DayOutcome(day, "empty")
                continue
            outcome = _backfill_day(engine, source, listing.found)
            if isinstance(outcome, DumpResult):
                stored.append(outcome)
            yield outcome
    finally:
        settle_rejections(engine, name, stored)
        if source.http.client is not None:
            source.http.client.close()


def _day_source(settings: Settings, name: str) -> HuggingFaceSource:
    found = next((s for s in settings.sources if s.name == name), None)
    if found is None:
        known = ", ".join(s.name for s in settings.sources if s.kind == "huggingface") or "none in the config"
        raise UsageError(f"--source: no source named {name!r} (huggingface sources: {known})")
    if found.kind != "huggingface":
        raise UsageError(f"--source {name}: a {found.kind} source has no days to fetch; backfill its dumps by PATH")
    return HuggingFaceSource.configured(found, settings.limits)


def _days_stored(engine: Engine, source: HuggingFaceSource, first: dt.date, last: dt.date) -> set[dt.date]:
    """The days from `first` to `last` of which a dump fetched by this source is stored (its dumps
    are named by their archived files)."""
    folder = str(source.http.archive_folder.absolute())
    with engine.connect() as conn:
        return {as_of for path, as_of in queries.dumps_between(conn, first, last) if _inside(path, folder)}


def _inside(path: str, folder: str) -> bool:
    return str(Path(path).absolute().parent) == folder


def _backfill_day(engine: Engine, source: HuggingFaceSource, found: Found) -> Outcome:
    assert found.raw is not None
    try:
        listing = parse_dump(found.raw, found.as_of)
    except BadInputError as exc:  # the API's JSON changed: refused, recorded, the other days go on
        reject(engine, Rejected(source.name, found.name, str(exc), found.key, found.captured))
        return Failure(found.raw.source, exc)
    return apply(engine, listing, backfill=True)


# --- the daemon's polls ----------------------------------------------------------------------------


def poll_source(engine: Engine, source: Source, now: dt.datetime) -> PollResult:
    """Fetch what the source has, ingest each dump, settle its file, record the refusals.
    A source that cannot be fetched raises SourceError (recorded by `record_poll`)."""
    with engine.connect() as conn:
        state = queries.source_state(conn, source.name)
    memory = SourceMemory(state.etag, state.last_modified, state.complete_through) if state else SourceMemory()
    fetched = source.fetch(memory, now)
    result = PollResult(
        source.name,
        waiting=list(fetched.waiting),
        validators=dict(fetched.validators),
        days=list(fetched.days),
        complete_through=fetched.complete_through,
    )
    for found in fetched.found:
        _take(engine, source, fetched, found, result)
    for rejected in result.rejected:
        reject(engine, rejected)
    settle_rejections(engine, source.name, result.ingested)
    return result


def _take(engine: Engine, source: Source, fetched: Fetched, found: Found, result: PollResult) -> None:
    """One dump: a bad one is its own problem alone (refused), unless the source says a dump that
    does not parse means the source itself is failing (a web page whose markup changed)."""
    if fetched.skip_known and _known(engine, source.name, found.key):
        return  # a folder whose files stay put: ingested or refused before, not even parsed again
    if found.raw is None:
        _refuse(source, found, found.unread or "cannot be read", result)
        return
    try:
        listing = parse_dump(found.raw, found.as_of)
    except Exception as exc:
        _bad_dump(source, fetched, found, exc, result)
        return
    outcome = apply(engine, listing)  # a StoreError propagates: the file stays for later
    result.ingested.append(outcome)
    if found.file is not None and source.changed_since_read(found):
        result.waiting.append(found.name)  # what was read is stored; the whole file comes again (a diff)
        return
    log.info(
        "source %s: ingested %s: %d entries, %d new, %d updated%s",
        source.name,
        found.name,
        outcome.entries,
        outcome.new,
        outcome.updated,
        " (already ingested)" if outcome.duplicate_dump else "",
    )
    if found.file is not None:
        files.move_into(found.file, files.PROCESSED)


def _bad_dump(source: Source, fetched: Fetched, found: Found, exc: Exception, result: PollResult) -> None:
    """A dump that does not parse: refused (an inbox file), or the source's failure (a web page
    whose markup changed, for which an empty listing is a warning, not a refusal)."""
    if fetched.failing_when_bad:
        if isinstance(exc, EmptyListingError):
            log.warning("source %s: the listing is empty (zero entries)", source.name)
            result.empty = True
            return
        if isinstance(exc, BadInputError):
            raise SourceError(f"source {source.name}: the page did not parse: {exc}") from None
        raise exc
    # A file that breaks the parser in any way is refused, never retried forever.
    reason = str(exc) if isinstance(exc, BadInputError) else f"{found.name}: unreadable listing: {type(exc).__name__}"
    _refuse_unless_growing(source, found, reason, result)


def _known(engine: Engine, source: str, key: str) -> bool:
    with engine.connect() as conn:
        return queries.dump_by_hash(conn, key) is not None or queries.rejection_known(conn, source, key)


def _refuse_unless_growing(source: Source, found: Found, reason: str, result: PollResult) -> None:
    if found.file is not None and source.changed_since_read(found):
        result.waiting.append(found.name)  # still being written: judged again once it settles
        return
    _refuse(source, found, reason, result)


def _refuse(source: Source, found: Found, reason: str, result: PollResult) -> None:
    """Report a refused dump and, in an inbox, move its file aside to rejected/ with the reason."""
    result.rejected.append(Rejected(source.name, found.name, reason, found.key, found.captured))
    log.warning("source %s: rejected %s: %s", source.name, found.name, reason)
    if found.file is None:
        return
    try:
        target = files.move_into(found.file, files.REJECTED)
        target.with_name(target.name + ".error").write_text(reason + "\n", encoding="utf-8")
    except OSError as exc:
        log.error("source %s: cannot move %s to %s/: %s", source.name, found.name, files.REJECTED, exc.strerror)


def record_poll(engine: Engine, source: str, now: dt.datetime, outcome: PollResult | Exception) -> None:
    """The source's state after a poll, for `status` and the next conditional GET. Advisory:
    a store that cannot take it is logged, never allowed to stop the service."""
    if isinstance(outcome, Exception):
        values: dict[str, Any] = {"last_poll_at": now, "last_error_at": now, "last_error": str(outcome)}
    else:
        values = {"last_poll_at": now, "last_success_at": now, **outcome.validators}
        if outcome.days:  # a source fetched by day: what today's listing held (unless it was a 304)
            if outcome.days[-1].items is not None:
                values["last_entries"] = outcome.days[-1].items
        elif outcome.ingested or outcome.empty:
            values["last_entries"] = outcome.entries
        if outcome.complete_through is not None:
            values["complete_through"] = outcome.complete_through
        if outcome.changed:
            values["last_change_at"] = now
    failed = isinstance(outcome, Exception)
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            previous = queries.source_state(conn, source)
            failures = (previous.failures if previous is not None else 0) + 1 if failed else 0
            if not failed and (previous is None or previous.last_change_at is None):
                # staleness counts from the first successful poll: the listing we started with
                values.setdefault("last_change_at", now)
            queries.save_source_state(conn, source, {**values, "failures": failures}, exists=previous is not None)
    except Exception as exc:
        log.error("cannot record the state of source %s: %s", source, exc)
