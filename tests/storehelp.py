"""Reading and poking a store from the tests, the same way on SQLite and PostgreSQL: through
SQLAlchemy (never `sqlite3.connect`), each value typed by the table's own column (dates as dates,
booleans as booleans, every moment an aware datetime in UTC)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.pool import NullPool

from paperdigest import clock
from paperdigest.store.tables import metadata


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """A connection of its own (nothing pooled outlives it), committed at the end."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _typed(value: Any) -> Any:
    return clock.as_utc(value) if isinstance(value, dt.datetime) else value


def table(url: str, name: str, drop: tuple[str, ...] = (), order_by: str = "1, 2") -> list[tuple[Any, ...]]:
    """Every row of a table (ordered by its first two columns unless told), without `drop`."""
    columns = [c for c in metadata.tables[name].columns if c.name not in drop]
    with connect(url) as conn:
        rows = conn.execute(select(*columns).order_by(text(order_by)))
        return [tuple(_typed(v) for v in row) for row in rows]


def columns(url: str, name: str, *names: str, order_by: str = "1") -> list[tuple[Any, ...]]:
    """The named columns of every row of a table, typed."""
    found = metadata.tables[name].c
    with connect(url) as conn:
        rows = conn.execute(select(*(found[n] for n in names)).order_by(text(order_by)))
        return [tuple(_typed(v) for v in row) for row in rows]


def dicts(url: str, name: str, order_by: str = "1, 2") -> list[dict[str, Any]]:
    """Every row of a table as a dict of column -> typed value."""
    with connect(url) as conn:
        rows = conn.execute(select(metadata.tables[name]).order_by(text(order_by))).mappings()
        return [{k: _typed(v) for k, v in row.items()} for row in rows]


def snapshot(url: str, names: tuple[str, ...] = ("paper", "dump", "sighting")) -> dict[str, list[tuple[Any, ...]]]:
    return {name: table(url, name) for name in names}


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of a query written for both engines (named parameters, :name). Values as each
    driver gives them (SQLite: dates and moments as text): for typed values use `table` or `columns`."""
    with connect(url) as conn:
        return [tuple(_typed(v) for v in row) for row in conn.execute(text(sql), params)]


def scalar(url: str, sql: str, **params: Any) -> Any:
    found = rows(url, sql, **params)
    return found[0][0] if found else None


def execute(url: str, sql: str, **params: Any) -> int:
    """Run one statement (written for both engines) and commit it; the rows it touched."""
    with connect(url) as conn:
        return int(conn.execute(text(sql), params).rowcount)


def insert(url: str, name: str, *values: dict[str, Any]) -> None:
    """Insert rows into a table through its Core definition (values typed as the code writes them)."""
    with connect(url) as conn:
        conn.execute(metadata.tables[name].insert(), list(values))
