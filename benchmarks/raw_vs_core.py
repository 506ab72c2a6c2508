"""The raw statements against their Core alternatives: what keeps each statement of
daemon/store/queries/_raw.py (see benchmarks/README.md, "Raw statements").

    python benchmarks/raw_vs_core.py                     # SQLite (about a minute)
    python benchmarks/raw_vs_core.py --postgresql URL    # also on a server where it may create databases
    python benchmarks/raw_vs_core.py --rounds 5 --dumps 30

1. The ingest's new papers: `apply` of synthetic 200-entry dumps (synth.py: about half new
   papers, half known ones gaining upvotes), as shipped and with `queries.insert_papers` swapped
   for each Core alternative. CPU time per dump (and wall time, which on PostgreSQL includes the
   server's work), the least of --rounds runs on fresh stores, the variants interleaved in one
   process and shuffled each round, so that the machine's noise falls on all of them alike.
2. The accepted mark, the commit after the server's 250 (README, "Mail"): how long calling it
   takes as shipped (one autocommitted statement) and as Core's UPDATE in its own transaction;
   the median of 2,000 marks of one outbox row.

Nothing here asserts a timing; it prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import synth
from sqlalchemy import Connection, create_engine, insert, select, update

from paperdigest.ingest import apply
from paperdigest.model import Listing, RawDump
from paperdigest.parse import parse_dump
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.store.queries import papers
from paperdigest.store.tables import outbox_table, paper_table

InsertPapers = Callable[[Connection, list[tuple[Any, str]], dict[str, Any]], list[int]]


def _rows(papers_: list[tuple[Any, str]], first: dict[str, Any]) -> list[dict[str, Any]]:
    columns = papers.WRITTEN_PAPER_COLUMNS
    return [dict(zip(columns, papers._paper_values(p, key, columns), strict=True)) | first for p, key in papers_]


def core_returning(conn: Connection, papers_: list[tuple[Any, str]], first: dict[str, Any]) -> list[int]:
    """Core's INSERT ... RETURNING (insertmanyvalues), rows matched back by identity."""
    if not papers_:
        return []
    rows = _rows(papers_, first)
    c = paper_table.c
    stmt = insert(paper_table).returning(c.id, c.title_key, c.arxiv_id)
    found = {(r.title_key, r.arxiv_id): int(r.id) for r in conn.execute(stmt, rows)}
    return [found[row["title_key"], row["arxiv_id"]] for row in rows]


def core_returning_ordered(conn: Connection, papers_: list[tuple[Any, str]], first: dict[str, Any]) -> list[int]:
    """Core's INSERT ... RETURNING with sort_by_parameter_order (one statement per row on SQLite)."""
    if not papers_:
        return []
    stmt = insert(paper_table).returning(paper_table.c.id, sort_by_parameter_order=True)
    return [int(r.id) for r in conn.execute(stmt, _rows(papers_, first))]


def core_executemany(conn: Connection, papers_: list[tuple[Any, str]], first: dict[str, Any]) -> list[int]:
    """Core's executemany, then the ids read back by the dump that brought the papers in."""
    if not papers_:
        return []
    rows = _rows(papers_, first)
    conn.execute(insert(paper_table), rows)
    c = paper_table.c
    stmt = select(c.id, c.title_key, c.arxiv_id).where(c.first_dump_id == first["first_dump_id"])
    found = {(r.title_key, r.arxiv_id): int(r.id) for r in conn.execute(stmt)}
    return [found[row["title_key"], row["arxiv_id"]] for row in rows]


VARIANTS: dict[str, InsertPapers] = {
    # SQLite: one executemany, the ids SQLite would give; PostgreSQL: INSERT ... unnest ... RETURNING
    "as shipped (raw)": queries.insert_papers,
    "Core INSERT ... RETURNING": core_returning,
    "Core INSERT ... RETURNING, ordered": core_returning_ordered,
    "Core executemany, ids read back": core_executemany,
}


@contextmanager
def stores(server: str | None, tmp: str) -> Iterator[Callable[[], str]]:
    """Fresh store URLs: SQLite files, or databases on `server` (dropped at the end)."""
    made: list[str] = []

    def fresh() -> str:
        if server is None:
            return f"sqlite:///{tmp}/{uuid.uuid4().hex}.db"
        name = f"bench_{uuid.uuid4().hex[:12]}"
        with create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        made.append(name)
        return server.rsplit("/", 1)[0] + "/" + name

    try:
        yield fresh
    finally:
        if made and server is not None:
            admin = create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for name in made:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.dispose()


def listings(dumps: int) -> list[Listing]:
    corpus = synth.Corpus(20240601, dumps * 100, dumps, 200)
    return [
        parse_dump(RawDump(f"d{n}.txt", synth.render(day, shown).encode(), None), day)
        for n, day, shown in corpus.iter_dumps()
    ]


def ingest(fresh: Callable[[], str], parsed: list[Listing], rounds: int) -> dict[str, tuple[float, float]]:
    """Least CPU and wall milliseconds per dump, per variant."""
    shipped = queries.insert_papers
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        for round_ in range(rounds):
            order = list(VARIANTS)
            random.Random(round_).shuffle(order)
            for name in order:
                queries.insert_papers = VARIANTS[name]  # type: ignore[assignment]
                engine = open_engine(fresh())
                started, used = time.perf_counter(), time.process_time()
                for listing in parsed:
                    apply(engine, listing)
                wall[name].append((time.perf_counter() - started) / len(parsed) * 1000)
                cpu[name].append((time.process_time() - used) / len(parsed) * 1000)
                engine.dispose()
    finally:
        queries.insert_papers = shipped  # type: ignore[assignment]
    return {name: (min(cpu[name]), min(wall[name])) for name in VARIANTS}


def accepted_marks(url: str, marks: int = 2000) -> dict[str, float]:
    """Median microseconds of calling the mark: as shipped, and Core in its own transaction."""
    engine = open_engine(url)
    now = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    row = {
        "subscriber": "a@example.org", "period": now, "window_start": now, "window_end": now, "created_at": now,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "message_id": "<m@x>", "subject": "s",
        "papers": "{}",
    }  # fmt: skip
    c = outbox_table.c

    def core(conn: Connection, row_id: int) -> Callable[[], bool]:
        stmt = (
            update(outbox_table)
            .where(c.id == row_id, c.status == "sending", c.claimed_by == "token")
            .values(status="accepted", sent_at=now, attempts=1, last_error=None)
        )

        def mark() -> bool:
            with conn.begin():
                return conn.execute(stmt).rowcount == 1

        return mark

    def shipped(conn: Connection, row_id: int) -> Callable[[], bool]:
        return queries.accepted_mark(conn, row_id, "token", now, 1)

    taken: dict[str, list[float]] = {"as shipped (one autocommitted statement)": [], "Core in a transaction": []}
    makers = dict(zip(taken, (shipped, core), strict=True))
    with engine.connect().execution_options(write=True) as conn:
        with conn.begin():
            row_id = queries.insert_outbox(conn, row, b"x" * 50_000)
        claim = update(outbox_table).where(c.id == row_id).values(status="sending", claimed_by="token")
        for n in range(marks):
            for name, make in makers.items():
                with conn.begin():
                    conn.execute(claim)
                mark = make(conn, row_id)
                started = time.perf_counter_ns()
                assert mark()
                if n >= marks // 10:  # the first tenth warms up
                    taken[name].append((time.perf_counter_ns() - started) / 1000)
    engine.dispose()
    return {name: statistics.median(values) for name, values in taken.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--postgresql", metavar="URL", help="also measure on this server (it creates databases)")
    parser.add_argument("--rounds", type=int, default=10, help="runs per variant (default 10)")
    parser.add_argument("--dumps", type=int, default=50, help="dumps per run (default 50)")
    args = parser.parse_args(argv)
    parsed = listings(args.dumps)
    engines = [("sqlite", None)] + ([("postgresql", args.postgresql)] if args.postgresql else [])
    with tempfile.TemporaryDirectory(prefix="raw-vs-core-") as tmp:
        for label, server in engines:
            with stores(server, tmp) as fresh:
                print(f"{label}: apply, ms per 200-entry dump (least of {args.rounds} runs of {args.dumps} dumps)")
                results = ingest(fresh, parsed, args.rounds)
                base_cpu, base_wall = results[next(iter(VARIANTS))]
                for name, (cpu, wall) in results.items():
                    cpu_text = f"{cpu:6.2f} ({cpu - base_cpu:+.2f})"
                    print(f"  {name:50} cpu {cpu_text}   wall {wall:6.2f} ({wall - base_wall:+.2f})")
                print(f"{label}: the accepted mark, µs (median)")
                for name, micros in accepted_marks(fresh()).items():
                    print(f"  {name:50} {micros:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
