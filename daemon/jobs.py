"""The ingest and backfill jobs: sources -> parse -> ingest, with per-dump outcomes.

ingest:   parse every dump first; one bad dump refuses them all (the store is untouched)
backfill: oldest capture first; a bad dump is reported and the others go on
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine

from daemon.errors import BadInputError, PaperdigestError, SourceError
from daemon.ingest import apply
from daemon.model import DumpResult, Listing
from daemon.parse import parse_dump
from daemon.sources import files
from daemon.sources.http import fetch_dump


@dataclass(frozen=True, slots=True)
class Failure:
    source: str
    error: PaperdigestError


Outcome = DumpResult | Failure


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def parse_paths(paths: list[str], as_of: dt.date | None, archive: bool = False) -> list[Listing]:
    """Parse every dump named (files oldest capture first, then URLs); the first bad one raises.

    A URL is fetched once; with `archive` its body is kept under the state directory first.
    """
    local = [p for p in paths if not is_url(p)]
    ordered = files.order_by_capture(files.expand(local), as_of) if local else []
    listings = [parse_dump(files.read(p.path), as_of) for p in ordered]
    for url in (p for p in paths if is_url(p)):
        listings.append(parse_dump(fetch_dump(url, archive=archive), as_of))
    return listings


def ingest(engine: Engine, paths: list[str], as_of: dt.date | None = None, dry_run: bool = False) -> list[DumpResult]:
    listings = parse_paths(paths, as_of, archive=not dry_run)
    return [apply(engine, listing, dry_run=dry_run) for listing in listings]


def backfill(
    engine: Engine,
    paths: list[str],
    as_of: dt.date | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Iterator[Outcome]:
    """Ingest many dumps as history: oldest capture first, bad dumps reported, never fatal."""
    ordered = files.order_by_capture(files.expand(paths), as_of)
    if on_start is not None:
        on_start(len(ordered))
    for pending in ordered:
        try:
            listing = parse_dump(files.read(pending.path), as_of)
        except (BadInputError, SourceError) as exc:
            yield Failure(str(pending.path), exc)
            continue
        yield apply(engine, listing, backfill=True)
