"""The floor: the same rows written with plain sqlite3, no parsing, no diff, no ORM.

It gets already-parsed rows (title key computed) and writes, per dump and in one transaction:
the dump row, an executemany upsert of the papers (ON CONFLICT on the unique title key updates
upvotes and last_seen), and an executemany insert of the sightings. Same pragmas as the store
(WAL, synchronous=NORMAL, foreign keys on) and the same secondary indexes, so it does the
same index maintenance; what it leaves out is the work that is not writing.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from synth import Corpus, Shown, dump_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS dump (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL UNIQUE, as_of TEXT NOT NULL, entries INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS paper (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, title TEXT NOT NULL, abstract TEXT,
    authors INTEGER, org TEXT, published TEXT, upvotes INTEGER,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, first_dump_id INTEGER NOT NULL REFERENCES dump (id)
);
CREATE INDEX IF NOT EXISTS ix_paper_upvotes ON paper (upvotes);
CREATE INDEX IF NOT EXISTS ix_paper_first_seen ON paper (first_seen);
CREATE INDEX IF NOT EXISTS ix_paper_first_dump_id ON paper (first_dump_id);
CREATE TABLE IF NOT EXISTS sighting (
    dump_id INTEGER NOT NULL REFERENCES dump (id), paper_id INTEGER NOT NULL REFERENCES paper (id),
    position INTEGER NOT NULL, upvotes INTEGER, PRIMARY KEY (dump_id, paper_id)
);
CREATE INDEX IF NOT EXISTS ix_sighting_paper_id ON sighting (paper_id);
"""

UPSERT_PAPER = """
INSERT INTO paper (key, title, abstract, authors, org, published, upvotes, first_seen, last_seen, first_dump_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET upvotes = excluded.upvotes, last_seen = excluded.last_seen
"""
INSERT_SIGHTING = "INSERT INTO sighting SELECT ?, id, ?, ? FROM paper WHERE key = ?"


@dataclass(frozen=True, slots=True)
class FloorResult:
    seconds: float
    dumps: int
    entries: int


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


def _org(line: str | None) -> str | None:
    if line is None:
        return None
    slug, _, full = line.partition(" ")
    return full or slug


def write_dump(conn: sqlite3.Connection, source: str, as_of: str, shown: list[Shown]) -> None:
    """One dump, one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    cursor = conn.execute("INSERT INTO dump (source, as_of, entries) VALUES (?, ?, ?)", (source, as_of, len(shown)))
    dump_id = cursor.lastrowid
    conn.executemany(UPSERT_PAPER, [
        (s.paper.key, s.paper.title, s.paper.abstract, s.paper.authors, _org(s.paper.org), s.published.isoformat(),
         s.upvotes, as_of, as_of, dump_id)
        for s in shown
    ])
    conn.executemany(INSERT_SIGHTING, [(dump_id, s.position, s.upvotes, s.paper.key) for s in shown])
    conn.execute("COMMIT")


def run(corpus: Corpus, db: Path) -> FloorResult:
    """Write every dump of the corpus; only the writing is timed (the rows are made untimed)."""
    conn = connect(db)
    elapsed = 0.0
    entries = 0
    try:
        for dump, capture, shown in corpus.iter_dumps():
            start = time.perf_counter()
            write_dump(conn, dump_name(dump), capture.isoformat(), shown)
            elapsed += time.perf_counter() - start
            entries += len(shown)
    finally:
        conn.close()
    return FloorResult(elapsed, corpus.dumps, entries)


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("paper", "sighting", "dump")}
    finally:
        conn.close()
