"""Scale independence: does ingesting one dump cost the same in a small and a large store?

Two stores are made with our schema (`open_engine`) and filled fast with plain sqlite3:
the large one with synthetic papers 0..L-1, the small one with the most recent S of them
(L-S..L-1), so both end with the same papers. The same fresh dumps (half new papers, half
of those recent papers both stores hold, as a real dump re-lists recent papers) are applied
to each with `paperdigest.ingest.apply`, timed per dump.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from synth import Shown, SynthPaper, make_paper, render

from paperdigest.ingest import apply
from paperdigest.model import Listing, RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine

STORE_EPOCH = dt.date(2022, 1, 3)  # first_seen of the stored papers spreads over ~8 years from here
STORE_SPAN_DAYS = 3000
FRESH_EPOCH = dt.date(2031, 6, 2)  # fresh dumps are captured after every stored sighting
FRESH_BASE = 50_000_000  # paper indices of the fresh dumps' new papers (unused by any store)
FILL_CHUNK = 50_000
# The topics of the stores' config (reads.py writes it): the topic index is built for them.
TOPICS = {
    "agents": ["agent", "web agent", "GUI", "computer use", "tool use"],
    "reasoning": ["reasoning", "chain-of-thought", "math", "logic"],
    "efficiency": ["efficient", "scaling", "routing", "compression", "latency"],
}

INSERT_PAPER = """
INSERT INTO paper (title_key, title, abstract, authors, org, published, upvotes, first_seen, last_seen,
                   first_dump_id, first_ingested_at, first_backfill)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 1)
"""
INSERT_DUMP = """
INSERT INTO dump (id, content_hash, source, as_of, layout, ingested_at, backfill, status, entries, new, updated,
                  unchanged)
VALUES (1, ?, 'bench-scale-fill', ?, 'full', ?, 1, 'ingested', 0, 0, 0, 0)
"""


@dataclass(frozen=True, slots=True)
class StoreTiming:
    papers: int
    build_seconds: float
    samples_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)


def _first_seen(index: int) -> dt.date:
    """The same for a paper in every store, whatever the store's size."""
    return STORE_EPOCH + dt.timedelta(days=index % STORE_SPAN_DAYS)


def _published(paper: SynthPaper) -> dt.date:
    return _first_seen(paper.index) - dt.timedelta(days=paper.published_lag)


def _org(line: str | None) -> str | None:
    if line is None:
        return None
    slug, _, full = line.partition(" ")
    return full or slug


def _paper_rows(seed: int, start: int, stop: int) -> Iterator[tuple[object, ...]]:
    ingested = "2031-01-01 00:00:00.000000"
    for index in range(start, stop):
        paper = make_paper(seed, index)
        first = _first_seen(index)
        yield (paper.key, paper.title, paper.abstract, paper.authors, _org(paper.org), _published(paper).isoformat(),
               paper.base_upvotes, first.isoformat(), (first + dt.timedelta(days=7)).isoformat(), ingested)


def build_store(path: Path, seed: int, papers: range) -> float:
    """A store of our schema holding the synthetic papers `papers`; returns the seconds it took."""
    start = time.perf_counter()
    open_engine(f"sqlite:///{path}").dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        stamp = "2031-01-01 00:00:00.000000"
        conn.execute(INSERT_DUMP, (f"bench-scale-{seed}-{papers.start}-{papers.stop}", STORE_EPOCH.isoformat(), stamp))
        for chunk_start in range(papers.start, papers.stop, FILL_CHUNK):
            chunk_stop = min(papers.stop, chunk_start + FILL_CHUNK)
            conn.executemany(INSERT_PAPER, _paper_rows(seed, chunk_start, chunk_stop))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - start


def index_topics(path: Path) -> float | None:
    """Build the store's topic index (paper_topic) for TOPICS, as the first `ingest` or daemon
    start with that config does; the seconds it took, or None for code that has no such index.
    The fill writes the papers with plain sqlite3, which keeps no index: without this, the
    first ingest of a measured round would build it."""
    try:
        from paperdigest import topic_index  # noqa: PLC0415  (absent from the code before issue 13's index)
    except ImportError:
        return None
    from paperdigest.config import Settings, TopicSettings  # noqa: PLC0415

    settings = Settings().model_copy(update={"topics": {n: TopicSettings(keywords=k) for n, k in TOPICS.items()}})
    engine = open_engine(f"sqlite:///{path}")
    try:
        start = time.perf_counter()
        topic_index.ensure(engine, settings)
        return time.perf_counter() - start
    finally:
        engine.dispose()


def fresh_listing(seed: int, number: int, entries: int, existing: range) -> Listing:
    """Fresh dump `number`: half new papers, half papers from `existing` (held by every store)."""
    text = fresh_text(seed, number, entries, existing)
    return parse_dump(RawDump(fresh_name(number), text.encode("utf-8"), None))


def fresh_name(number: int) -> str:
    """The file name of fresh dump `number` (its capture date in it)."""
    return f"fresh_{(FRESH_EPOCH + dt.timedelta(days=number)).isoformat()}_{number:04d}.txt"


def fresh_text(seed: int, number: int, entries: int, existing: range) -> str:
    """Fresh dump `number` in our text layout: half new papers, half papers from `existing`."""
    capture = FRESH_EPOCH + dt.timedelta(days=number)
    rng = random.Random(seed * 31 + number)
    new_count = entries // 2
    new = [make_paper(seed, FRESH_BASE + number * entries + i) for i in range(new_count)]
    old = [make_paper(seed, i) for i in rng.sample(existing, min(entries - new_count, len(existing)))]
    # New papers as first listed; stored ones with the stored publication date and more upvotes.
    rows = [(p, p.base_upvotes, capture - dt.timedelta(days=p.published_lag)) for p in new]
    rows += [(p, p.base_upvotes + p.growth * 10 + 1, _published(p)) for p in old]
    rows.sort(key=lambda row: (-row[1], row[0].index))
    shown = [Shown(pos, paper, upvotes, published) for pos, (paper, upvotes, published) in enumerate(rows, 1)]
    return render(capture, shown)


def _timed_apply(engine: Engine, listing: Listing) -> float:
    start = time.perf_counter()
    apply(engine, listing)
    return (time.perf_counter() - start) * 1000


def measure(workdir: Path, seed: int, small: int, large: int, entries: int, repeats: int) -> list[StoreTiming]:
    """Build both stores, then apply the same fresh dumps to each (one warm-up dump, then `repeats`)."""
    sizes = (small, large)
    paths = [workdir / f"scale_{size}.db" for size in sizes]
    for path in paths:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    held = [range(large - size, large) for size in sizes]  # both stores end with the same recent papers
    builds = [build_store(path, seed, papers) for path, papers in zip(paths, held, strict=True)]
    for path in paths:  # each dump's `apply` then keeps the index, as it would in a real store
        index_topics(path)
    engines = [open_engine(f"sqlite:///{path}") for path in paths]
    timings = [StoreTiming(size, build) for size, build in zip(sizes, builds, strict=True)]
    try:
        for number in range(repeats + 1):
            listing = fresh_listing(seed, number, entries, held[0])
            order = [0, 1] if number % 2 == 0 else [1, 0]  # alternate which store goes first
            for which in order:
                elapsed = _timed_apply(engines[which], listing)
                if number > 0:
                    timings[which].samples_ms.append(elapsed)
    finally:
        for engine in engines:
            engine.dispose()
    return timings
