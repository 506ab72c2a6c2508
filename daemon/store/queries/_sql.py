"""What the query modules share: chunking, and the statements whose spelling differs by engine
(SQLite's and PostgreSQL's `INSERT ... ON CONFLICT`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Table

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

CHUNK = 500  # stays under every backend's limit of bound parameters


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def code_point_order(conn: Connection, column: ColumnElement[str]) -> ColumnElement[str]:
    """A text column to ORDER BY as Python and SQLite compare text (by code point), whatever
    collation the PostgreSQL database was made with ("en_US" puts "alpha" before "Beta")."""
    return column.collate("C") if conn.dialect.name == "postgresql" else column


def upsert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can take `.on_conflict_do_nothing()` / `.on_conflict_do_update()`, in the
    dialect's own construct (the two engines spell the clause alike; Core has no portable form)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415  lazy: 40 ms of imports a SQLite store never needs

        return postgresql.insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415  lazy: loaded already by a SQLite engine

        return sqlite.insert(table)
    raise NotImplementedError(f"no INSERT ... ON CONFLICT for {dialect}")
