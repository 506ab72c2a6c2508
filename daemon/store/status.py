"""The reads of `status`, without the SQLModel classes (issue 13: `status` starts in under 0.35 s).

Importing the store's SQLModel tables (tables.py) imports SQLModel, SQLAlchemy's ORM and pydantic's
model building: about 0.17 s of CPU here, half of what `status` may take in all (`python -c
"import sqlmodel"` alone takes about 0.33 s on the benchmark's machine). `status` only reads, so it
reads the tables as the store declares them: their columns reflected, in one catalog read, once
`migrate.check` has found the store at the newest revision, whose schema tests/test_migrations.py
holds equal to the SQLModel tables. Nothing here describes the schema again; the statements are
Core, one spelling for both engines, like those of queries/ (which status used before; the daemon
and the other commands still do). tests/test_status_reads.py holds every read here equal to the
query it replaces in queries/, on both engines.

    tables = reflect(conn)            # name -> its columns, with the store's own types
    read(conn, tables, now, last)     # -> StoreStatus: counts, last dumps, mail, sources, ...
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, TableClause, case, column, func, inspect, or_, select, table

# The tables `status` reads.
TABLES = ("dump", "paper", "sighting", "outbox", "source_state", "rejection", "replica", "subscriber")


def reflect(conn: Connection) -> dict[str, TableClause]:
    """The tables `status` reads, with every column and its type as the store declares it."""
    found = inspect(conn).get_multi_columns(filter_names=TABLES)
    return {name: table(name, *(column(c["name"], c["type"]) for c in columns)) for (_, name), columns in found.items()}


@dataclass(frozen=True, slots=True)
class StoreStatus:
    counts: dict[str, int]
    last_dumps: list[Row[Any]]
    mail: dict[str, int]  # outbox rows by status
    attention: list[Row[Any]]
    source_states: dict[str, Row[Any]]
    failed_since: int
    rejections: list[Row[Any]]
    replicas: list[Row[Any]]
    subscribers: list[Row[Any]]


def read(conn: Connection, tables: dict[str, TableClause], last: int, failed_since: dt.datetime,
         rejected_since: dt.datetime) -> StoreStatus:
    return StoreStatus(
        counts(conn, tables),
        last_dumps(conn, tables, last),
        outbox_summary(conn, tables),
        outbox_attention(conn, tables),
        {row.name: row for row in conn.execute(select(tables["source_state"]))},
        recent_failed_mail(conn, tables, failed_since),
        open_rejections(conn, tables, rejected_since),
        replicas(conn, tables),
        list(conn.execute(select(tables["subscriber"]).order_by(tables["subscriber"].c.email))),
    )


def counts(conn: Connection, tables: dict[str, TableClause]) -> dict[str, int]:
    paper = tables["paper"]

    def count(of: TableClause, *where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(of).where(*where)).scalar_one())

    return {
        "papers": count(paper),
        "dumps": count(tables["dump"]),
        "sightings": count(tables["sighting"]),
        "papers_with_arxiv_id": count(paper, paper.c.arxiv_id.is_not(None)),
    }


def last_dumps(conn: Connection, tables: dict[str, TableClause], limit: int) -> list[Row[Any]]:
    dump = tables["dump"]
    return list(conn.execute(select(dump).order_by(dump.c.ingested_at.desc(), dump.c.id.desc()).limit(limit)))


def outbox_summary(conn: Connection, tables: dict[str, TableClause]) -> dict[str, int]:
    c = tables["outbox"].c
    stmt = select(c.status, func.count().label("n")).group_by(c.status)
    return {row.status: int(row.n) for row in conn.execute(stmt)}


def outbox_attention(conn: Connection, tables: dict[str, TableClause], limit: int = 20) -> list[Row[Any]]:
    """Digests not sent yet (failed, retrying, pending, being sent): the ones that need attention
    (failed, or with an error from a last attempt) first, each group newest first."""
    c = tables["outbox"].c
    needs_attention = case((or_(c.status == "failed", c.last_error.is_not(None)), 0), else_=1)
    stmt = (
        select(c.subscriber, c.period, c.status, c.attempts, c.last_error, c.next_attempt_at)
        .where(c.status.in_(("failed", "pending", "sending")))
        .order_by(needs_attention, c.period.desc(), c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))


def recent_failed_mail(conn: Connection, tables: dict[str, TableClause], since: dt.datetime) -> int:
    """Digests that failed since `since`, counted from when they failed: their last attempt
    (`claimed_at`, set when a delivery starts), whatever their period."""
    outbox = tables["outbox"]
    failed_at = func.coalesce(outbox.c.claimed_at, outbox.c.created_at)
    stmt = select(func.count()).select_from(outbox).where(outbox.c.status == "failed", failed_at >= since)
    return int(conn.execute(stmt).scalar_one())


def open_rejections(conn: Connection, tables: dict[str, TableClause], since: dt.datetime,
                    limit: int = 20) -> list[Row[Any]]:
    """Rejections since `since` that no newer good dump has settled, newest first."""
    c = tables["rejection"].c
    stmt = (
        select(c.source, c.file, c.reason, c.rejected_at, c.as_of)
        .where(c.resolved_at.is_(None), c.rejected_at >= since)
        .order_by(c.rejected_at.desc(), c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt))


def replicas(conn: Connection, tables: dict[str, TableClause]) -> list[Row[Any]]:
    c = tables["replica"].c
    return list(conn.execute(select(tables["replica"]).order_by(c.role, c.started_at, c.id)))
