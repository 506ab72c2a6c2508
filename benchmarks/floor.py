"""The ingest floor: the same dump files into the same tables, with nothing of ours in between.

    python benchmarks/floor.py --db sqlite:///floor.db DUMPS_DIR
    python benchmarks/floor.py --db postgresql+psycopg://user@127.0.0.1:5432/floor DUMPS_DIR

A plain script, run as its own process exactly as ours is, start-up included. It reads every
file of DUMPS_DIR (in name order: the benchmark's names sort by capture date), splits it
minimally into entries (blocks separated by blank lines; a three-line meta block whose middle
line is "·" closes an entry whose title and abstract are the two blocks before it; one regex
for the date/upvotes line), then per dump, in one transaction: insert the dump row, upsert the
papers with one `executemany` (ON CONFLICT on the unique title-key index: upvotes and
last_seen), and insert the sightings with one `executemany` (the paper's id found through the
same index). SQLite through `sqlite3`, with the store's pragmas; PostgreSQL through `psycopg`.

The tables, their indexes, unique constraints and foreign keys are copied from our schema (the
benchmark compares the two stores' schemas after every run and says so when they differ), so
the floor pays the same index upkeep. It imports only the standard library (and psycopg for
PostgreSQL): no SQLAlchemy, no package of ours. It prints one JSON line: dumps and entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

# Our schema's dump, paper and sighting tables as `open_engine` creates them on SQLite
# (sqlite_master's text), and their indexes.
SQLITE_SCHEMA = """
CREATE TABLE dump (
    id INTEGER NOT NULL,
    content_hash VARCHAR(64) NOT NULL,
    source VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    layout VARCHAR NOT NULL,
    ingested_at DATETIME NOT NULL,
    backfill BOOLEAN NOT NULL,
    status VARCHAR NOT NULL,
    entries INTEGER NOT NULL,
    new INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_dump_content_hash UNIQUE (content_hash)
);
CREATE INDEX ix_dump_as_of ON dump (as_of);
CREATE TABLE paper (
    id INTEGER NOT NULL,
    arxiv_id VARCHAR(32),
    title_key VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    abstract VARCHAR,
    authors INTEGER,
    org VARCHAR,
    published DATE,
    upvotes INTEGER,
    first_seen DATE NOT NULL,
    last_seen DATE NOT NULL,
    first_dump_id INTEGER NOT NULL,
    first_ingested_at DATETIME NOT NULL,
    first_backfill BOOLEAN NOT NULL,
    author_names JSON,
    ai_summary TEXT,
    ai_keywords JSON,
    github_repo VARCHAR,
    github_stars INTEGER,
    project_page VARCHAR,
    comments INTEGER,
    thumbnail VARCHAR,
    withdrawn_at DATE,
    PRIMARY KEY (id),
    FOREIGN KEY(first_dump_id) REFERENCES dump (id),
    CONSTRAINT uq_paper_arxiv_id UNIQUE (arxiv_id)
);
CREATE INDEX ix_paper_first_dump_id ON paper (first_dump_id);
CREATE INDEX ix_paper_upvotes ON paper (upvotes);
CREATE UNIQUE INDEX uq_paper_title_key_arxiv ON paper (title_key, coalesce(arxiv_id, ''));
CREATE INDEX ix_paper_first_seen ON paper (first_seen);
CREATE TABLE sighting (
    dump_id INTEGER NOT NULL,
    paper_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    upvotes INTEGER,
    PRIMARY KEY (dump_id, paper_id),
    FOREIGN KEY(dump_id) REFERENCES dump (id),
    FOREIGN KEY(paper_id) REFERENCES paper (id)
);
CREATE INDEX ix_sighting_paper_id ON sighting (paper_id);
"""

# The same on PostgreSQL, as our migrations leave it (pg_dump's view of it, written shorter).
POSTGRESQL_SCHEMA = """
CREATE TABLE dump (
    id BIGSERIAL NOT NULL,
    content_hash VARCHAR(64) NOT NULL,
    source VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    layout VARCHAR NOT NULL,
    ingested_at TIMESTAMP WITH TIME ZONE NOT NULL,
    backfill BOOLEAN NOT NULL,
    status VARCHAR NOT NULL,
    entries INTEGER NOT NULL,
    new INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    CONSTRAINT dump_pkey PRIMARY KEY (id),
    CONSTRAINT uq_dump_content_hash UNIQUE (content_hash)
);
CREATE INDEX ix_dump_as_of ON dump (as_of);
CREATE TABLE paper (
    id BIGSERIAL NOT NULL,
    arxiv_id VARCHAR(32),
    title_key VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    abstract VARCHAR,
    authors INTEGER,
    org VARCHAR,
    published DATE,
    upvotes INTEGER,
    first_seen DATE NOT NULL,
    last_seen DATE NOT NULL,
    first_dump_id BIGINT NOT NULL,
    first_ingested_at TIMESTAMP WITH TIME ZONE NOT NULL,
    first_backfill BOOLEAN NOT NULL,
    author_names JSON,
    ai_summary TEXT,
    ai_keywords JSON,
    github_repo VARCHAR,
    github_stars INTEGER,
    project_page VARCHAR,
    comments INTEGER,
    thumbnail VARCHAR,
    withdrawn_at DATE,
    CONSTRAINT paper_pkey PRIMARY KEY (id),
    CONSTRAINT paper_first_dump_id_fkey FOREIGN KEY (first_dump_id) REFERENCES dump (id),
    CONSTRAINT uq_paper_arxiv_id UNIQUE (arxiv_id)
);
CREATE INDEX ix_paper_first_dump_id ON paper (first_dump_id);
CREATE INDEX ix_paper_first_seen ON paper (first_seen);
CREATE INDEX ix_paper_upvotes ON paper (upvotes);
CREATE UNIQUE INDEX uq_paper_title_key_arxiv ON paper (title_key, coalesce(arxiv_id, ''));
CREATE TABLE sighting (
    dump_id BIGINT NOT NULL,
    paper_id BIGINT NOT NULL,
    position INTEGER NOT NULL,
    upvotes INTEGER,
    CONSTRAINT sighting_pkey PRIMARY KEY (dump_id, paper_id),
    CONSTRAINT sighting_dump_id_fkey FOREIGN KEY (dump_id) REFERENCES dump (id),
    CONSTRAINT sighting_paper_id_fkey FOREIGN KEY (paper_id) REFERENCES paper (id)
);
CREATE INDEX ix_sighting_paper_id ON sighting (paper_id);
"""

INSERT_DUMP = """
INSERT INTO dump (content_hash, source, as_of, layout, ingested_at, backfill, status, entries, new, updated, unchanged)
VALUES ({marks}) RETURNING id
"""
UPSERT_PAPER = """
INSERT INTO paper (title_key, title, abstract, authors, org, published, upvotes, first_seen, last_seen,
                   first_dump_id, first_ingested_at, first_backfill)
VALUES ({marks})
ON CONFLICT (title_key, coalesce(arxiv_id, '')) DO UPDATE SET upvotes = excluded.upvotes, last_seen = excluded.last_seen
"""
INSERT_SIGHTING = """
INSERT INTO sighting (dump_id, paper_id, position, upvotes)
SELECT {mark}, id, {mark}, {mark} FROM paper WHERE title_key = {mark} AND coalesce(arxiv_id, '') = ''
"""

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                      "Dec"), 1)}
DATE_LINE = re.compile(r"^(\w{3}) (\d{1,2})(?:, (\d{4}))? (\d+)$")  # "Mar 20 7", "Sep 30, 2024 2"
FILE_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
NON_KEY = re.compile(r"[^0-9a-z]+")
META_DOT = "·"

Row = tuple[str, str, str, int | None, str | None, dt.date, int]  # key, title, abstract, authors, org, published, up


def entries(text: str, capture: dt.date) -> Iterator[Row]:
    """The entries of a dump in the "full" layout, in order."""
    blocks = text.split("\n\n")
    for index, block in enumerate(blocks):
        lines = block.strip("\n").split("\n")
        if len(lines) != 3 or lines[1] != META_DOT:
            continue
        title, abstract = blocks[index - 2].strip(), blocks[index - 1].strip()
        who, when = lines[0].strip(), DATE_LINE.match(lines[2].strip())
        if when is None:
            raise SystemExit(f"floor: not a date line: {lines[2]!r}")
        month, day, year, upvotes = when.groups()
        published = dt.date(int(year) if year else capture.year, MONTHS[month], int(day))
        if year is None and published > capture:
            published = published.replace(year=capture.year - 1)
        authors = int(who.split()[1]) if who.endswith(("authors", "author")) else None
        org = None if authors is not None else (who.partition(" ")[2] or who)
        yield NON_KEY.sub(" ", title.lower()).strip(), title, abstract, authors, org, published, int(upvotes)


def dump_files(folder: str) -> Iterator[tuple[str, bytes, dt.date]]:
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        with open(path, "rb") as handle:
            data = handle.read()
        found = FILE_DATE.search(name)
        if found is None:
            raise SystemExit(f"floor: no YYYY-MM-DD in the name {name!r}")
        yield path, data, dt.date(int(found[1]), int(found[2]), int(found[3]))


# ------------------------------------------------------------------------------------------ SQLite


def ingest_sqlite(path: str, folder: str) -> tuple[int, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SQLITE_SCHEMA)
    insert_dump = INSERT_DUMP.format(marks=", ".join("?" * 11))
    upsert = UPSERT_PAPER.format(marks=", ".join("?" * 12))
    sighting = INSERT_SIGHTING.format(mark="?")
    dumps = total = 0
    for source, data, capture in dump_files(folder):
        rows = list(entries(data.decode("utf-8"), capture))
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        day = capture.isoformat()
        conn.execute("BEGIN IMMEDIATE")
        dump_id = conn.execute(insert_dump, (hashlib.sha256(data).hexdigest(), source, day, "full", now, 1,
                                             "ingested", len(rows), 0, 0, 0)).fetchone()[0]
        conn.executemany(upsert, [(k, t, a, au, o, p.isoformat(), u, day, day, dump_id, now, 1)
                                  for k, t, a, au, o, p, u in rows])
        conn.executemany(sighting, [(dump_id, pos, row[6], row[0]) for pos, row in enumerate(rows, 1)])
        conn.execute("COMMIT")
        dumps += 1
        total += len(rows)
    conn.close()
    return dumps, total


# -------------------------------------------------------------------------------------- PostgreSQL


def ingest_postgresql(conninfo: str, folder: str) -> tuple[int, int]:
    import psycopg  # noqa: PLC0415  (only for PostgreSQL: the SQLite floor never loads it)

    insert_dump = INSERT_DUMP.format(marks=", ".join(["%s"] * 11))
    upsert = UPSERT_PAPER.format(marks=", ".join(["%s"] * 12))
    sighting = INSERT_SIGHTING.format(mark="%s")
    dumps = total = 0
    with psycopg.connect(conninfo) as conn:
        conn.execute(POSTGRESQL_SCHEMA)
        conn.commit()
        for source, data, capture in dump_files(folder):
            rows = list(entries(data.decode("utf-8"), capture))
            now = dt.datetime.now(dt.UTC)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(insert_dump, (hashlib.sha256(data).hexdigest(), source, capture, "full", now, True,
                                          "ingested", len(rows), 0, 0, 0))
                dump_id: Any = cur.fetchone()
                cur.executemany(upsert, [(k, t, a, au, o, p, u, capture, capture, dump_id[0], now, True)
                                         for k, t, a, au, o, p, u in rows])
                cur.executemany(sighting, [(dump_id[0], pos, row[6], row[0]) for pos, row in enumerate(rows, 1)])
            dumps += 1
            total += len(rows)
    return dumps, total


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "--db":
        print(__doc__, file=sys.stderr)
        return 2
    url, folder = argv[1], argv[2]
    if url.startswith("sqlite:///"):
        dumps, total = ingest_sqlite(url.removeprefix("sqlite:///"), folder)
    elif url.startswith(("postgresql://", "postgresql+psycopg://")):
        dumps, total = ingest_postgresql("postgresql://" + url.split("://", 1)[1], folder)
    else:
        print(f"floor: not a sqlite:/// or postgresql:// URL: {url}", file=sys.stderr)
        return 2
    print(json.dumps({"dumps": dumps, "entries": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
