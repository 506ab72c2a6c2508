"""What the query modules share: chunking, and SQLite's plain-SQL path (values stored as
SQLAlchemy's SQLite types store them)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Date, DateTime

from paperdigest.store.tables import (
    dump_table,
    outbox_table,
    paper_table,
    sent_paper_table,
    sighting_table,
    source_state_table,
)

CHUNK = 500  # stays under every backend's limit of bound parameters



def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


FAST_SQLITE = True  # the tests turn it off to run the portable path (PostgreSQL's) on SQLite


def _fast(conn: Connection) -> bool:
    """Whether to take the plain-SQL path: SQLite only, where the hot statements skip Core."""
    return FAST_SQLITE and conn.dialect.name == "sqlite"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite types store: ISO dates, 'YYYY-MM-DD HH:MM:SS.ffffff' datetimes (UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _executemany(conn: Connection, table: str, columns: Sequence[str], params: list[tuple[Any, ...]]) -> None:
    """A plain driver INSERT executemany (SQLite's hot path: no per-row statement processing)."""
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(columns)})", params)


def _insert_one(conn: Connection, table: str, values: dict[str, Any]) -> int:
    """One row by plain SQL, dates stored as SQLAlchemy would; its new id."""
    columns, params = _sqlite_params([values], list(values))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(columns)})"
    return int(conn.exec_driver_sql(sql, params[0]).lastrowid)


def _sqlite_params(rows: list[dict[str, Any]], columns: Sequence[str]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Rows as parameter tuples, dates, datetimes and lists stored as SQLAlchemy would. Returns the
    column order of the tuples: plain columns first, then the JSON ones, then the temporal ones."""
    plain = [c for c in columns if c not in _TEMPORAL and c not in _JSON]
    lists = [c for c in columns if c in _JSON]
    temporal = [c for c in columns if c in _TEMPORAL]
    seen: dict[Any, Any] = {}  # a dump repeats its dates and its timestamp: convert each once

    def stored(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = _sqlite_value(value)
            return converted

    params = [
        (*[row[c] for c in plain], *[_json_text(row[c]) for c in lists], *[stored(row[c]) for c in temporal])
        for row in rows
    ]
    return [*plain, *lists, *temporal], params


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(list(value) if isinstance(value, tuple) else value)


# Columns holding dates or datetimes, in any table: the plain-SQL paths store them as
# SQLAlchemy's SQLite types would (see _sqlite_value).
_TEMPORAL = frozenset(
    column.name
    for table in (dump_table, paper_table, sighting_table, sent_paper_table, outbox_table, source_state_table)
    for column in table.columns
    if isinstance(column.type, Date | DateTime)
)

# Columns holding JSON (lists of strings): text on SQLite's plain-SQL paths.
_JSON = frozenset(
    column.name
    for table in (dump_table, paper_table, sighting_table, sent_paper_table, outbox_table, source_state_table)
    for column in table.columns
    if isinstance(column.type, JSON) or isinstance(getattr(column.type, "impl", None), JSON)
)
