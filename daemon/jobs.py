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


@dataclass(frozen=True, slots=True)
class Failure:
    source: str
    error: PaperdigestError


Outcome = DumpResult | Failure


def parse_paths(paths: list[str], as_of: dt.date | None) -> list[Listing]:
    """Parse every dump named (oldest capture first); the first bad one raises."""
    ordered = files.order_by_capture(files.expand(paths), as_of)
    return [parse_dump(files.read(p.path), as_of) for p in ordered]


def ingest(engine: Engine, paths: list[str], as_of: dt.date | None = None, dry_run: bool = False) -> list[DumpResult]:
    listings = parse_paths(paths, as_of)
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
