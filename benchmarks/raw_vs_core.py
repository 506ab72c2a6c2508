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
3. The fill of a batch, a run's reservations turned into finished digests: `queries.fill_outboxes`
   of 50 reservations (each row's 13 columns and a 54 KB message) as shipped (the UPDATEs through
   the driver: one a row on SQLite, one UPDATE ... FROM unnest for the batch on PostgreSQL) and
   with Core's UPDATE a row; CPU and wall time per reservation, the median of --fills batches.
4. The papers of a delivered batch (sent_paper): 50 digests of 23 papers each, through
   `_raw.insert_sent_papers` as shipped and through Core's executemany of the upsert; CPU and wall
   time per digest, the median of --fills batches, each on new subscribers.

Nothing here asserts a timing; it prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
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
from sqlalchemy import Connection, bindparam, create_engine, insert, select, update

from paperdigest.ingest import apply
from paperdigest.model import Listing, RawDump
from paperdigest.parse import parse_dump
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.store.queries import papers
from paperdigest.store.tables import outbox_message_table, outbox_table, paper_table

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


def _core_fill(conn: Connection, me: str, items: list[tuple[int, dict[str, Any], bytes]]) -> list[bool]:
    """The fill before it went raw: Core's UPDATE a reservation (built once per column set), its
    row count the "still ours" check; then the messages, as shipped."""
    kept = []
    for row_id, values, _ in items:
        names = tuple(sorted(values))
        stmt = _core_fill_stmt(names)
        params = {f"v_{name}": values[name] for name in names}
        kept.append(conn.execute(stmt, {**params, "row_id": row_id, "me": me}).rowcount == 1)
    messages = [{"outbox_id": row_id, "message": m} for (row_id, _, m), ok in zip(items, kept, strict=True) if ok]
    conn.execute(insert(outbox_message_table), messages)
    return kept


@functools.cache
def _core_fill_stmt(names: tuple[str, ...]) -> Any:
    c = outbox_table.c
    return (
        update(outbox_table)
        .where(c.id == bindparam("row_id"), c.status == "building", c.claimed_by == bindparam("me"))
        .values({**{name: bindparam(f"v_{name}") for name in names}, "claimed_by": None, "claimed_at": None})
    )


class _PerItem:
    """CPU and wall microseconds per item of each variant's runs; their medians."""

    def __init__(self, names: list[str]) -> None:
        self.cpu: dict[str, list[float]] = {name: [] for name in names}
        self.wall: dict[str, list[float]] = {name: [] for name in self.cpu}

    @contextmanager
    def timed(self, name: str, items: int) -> Iterator[None]:
        started, used = time.perf_counter(), time.process_time()
        yield
        self.cpu[name].append((time.process_time() - used) / items * 1e6)
        self.wall[name].append((time.perf_counter() - started) / items * 1e6)

    def medians(self) -> dict[str, tuple[float, float]]:
        return {name: (statistics.median(self.cpu[name]), statistics.median(self.wall[name])) for name in self.cpu}


def fills(url: str, batches: int, size: int = 50) -> dict[str, tuple[float, float]]:
    """Median CPU and wall microseconds per reservation of filling a batch: as shipped, and Core."""
    engine = open_engine(url)
    now = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    message = b"x" * 54_000
    variants: dict[str, Callable[..., list[bool]]] = {
        "as shipped (through the driver)": queries.fill_outboxes,
        "Core, one UPDATE a row": _core_fill,
    }
    timings = _PerItem(list(variants))
    serial = 0
    with engine.connect().execution_options(write=True) as conn:
        for _ in range(batches):
            for name, fill in variants.items():
                period = now + dt.timedelta(hours=serial)
                serial += 1
                reserved = [
                    {
                        "subscriber": f"r{n}@example.org", "period": period, "window_start": period,
                        "window_end": period, "created_at": now, "attempts": 0, "next_attempt_at": now,
                        "claimed_at": now, "message_id": "", "subject": "", "papers": "{}",
                    }
                    for n in range(size)
                ]  # fmt: skip
                with conn.begin():
                    ids = list(queries.reserve_outbox(conn, reserved, "me", now - dt.timedelta(minutes=1)).values())
                items = [
                    (row_id, {
                        "subscriber": f"r{n}@example.org", "period": period,
                        "window_start": period - dt.timedelta(days=1),
                        "window_end": period, "window_start_dump": 1, "window_end_dump": 2, "created_at": now,
                        "status": "pending", "attempts": 0, "next_attempt_at": now,
                        "message_id": f"<digest.{n}.{serial}@example.org>", "subject": "Paper digest: 23 new papers",
                        "papers": '{"1": 5, "2": 7}',
                    }, message)
                    for n, row_id in enumerate(ids)
                ]  # fmt: skip
                with timings.timed(name, size), conn.begin():
                    assert all(fill(conn, "me", items))
    engine.dispose()
    return timings.medians()


def sent_papers(url: str, batches: int, size: int = 50, per_digest: int = 23) -> dict[str, tuple[float, float]]:
    """Median CPU and wall microseconds per digest of recording a batch's papers: shipped and Core."""
    from paperdigest.store.queries import _raw  # noqa: PLC0415
    from paperdigest.store.queries._sql import upsert  # noqa: PLC0415
    from paperdigest.store.tables import sent_paper_table  # noqa: PLC0415

    engine = open_engine(url)
    now = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    for listing in listings(1):  # papers to point at
        apply(engine, listing)
    with engine.connect() as conn:
        pids = [int(pid) for pid in conn.execute(select(paper_table.c.id)).scalars()]

    def core(conn: Connection, rows: list[tuple[str, int, int | None, dt.datetime]]) -> None:
        stmt = upsert(conn.dialect.name, sent_paper_table).on_conflict_do_nothing(
            index_elements=["subscriber", "paper_id"]
        )
        conn.execute(stmt, [{"subscriber": s, "paper_id": p, "upvotes": u, "sent_at": t} for s, p, u, t in rows])

    variants: dict[str, Callable[..., None]] = {
        "as shipped (_raw.insert_sent_papers)": _raw.insert_sent_papers,
        "Core's executemany of the upsert": core,
    }
    timings = _PerItem(list(variants))
    serial = 0
    with engine.connect().execution_options(write=True) as conn:
        for _ in range(batches):
            for name, record in variants.items():
                rows = []
                for _digest in range(size):
                    serial += 1
                    rows += [(f"s{serial}@example.org", pid, 7, now) for pid in pids[serial % 40 :][:per_digest]]
                with timings.timed(name, size), conn.begin():
                    record(conn, rows)
    engine.dispose()
    return timings.medians()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--postgresql", metavar="URL", help="also measure on this server (it creates databases)")
    parser.add_argument("--rounds", type=int, default=10, help="runs per variant (default 10)")
    parser.add_argument("--dumps", type=int, default=50, help="dumps per run (default 50)")
    parser.add_argument("--fills", type=int, default=40, help="batches of 50 reservations filled (default 40)")
    parser.add_argument("--only-fill", action="store_true", help="measure the fill and the papers sent only")
    args = parser.parse_args(argv)
    parsed = listings(args.dumps)
    engines = [("sqlite", None)] + ([("postgresql", args.postgresql)] if args.postgresql else [])
    with tempfile.TemporaryDirectory(prefix="raw-vs-core-") as tmp:
        for label, server in engines:
            with stores(server, tmp) as fresh:
                print(f"{label}: the fill of a batch of 50, µs per reservation (median of {args.fills})")
                for name, (cpu, wall) in fills(fresh(), args.fills).items():
                    print(f"  {name:50} cpu {cpu:8.1f}   wall {wall:8.1f}")
                print(f"{label}: the papers of a delivered batch of 50, µs per digest (median of {args.fills})")
                for name, (cpu, wall) in sent_papers(fresh(), args.fills).items():
                    print(f"  {name:50} cpu {cpu:8.1f}   wall {wall:8.1f}")
                if args.only_fill:
                    continue
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
