"""What the daemon remembers of the sources: their state, and the dumps they refused (`status` reads them
through store/status.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from paperdigest.store.queries._sql import upsert
from paperdigest.store.tables import (
    rejection_table,
    source_state_table,
)


def source_state(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(source_state_table).where(source_state_table.c.name == name)).first()


def save_source_state(conn: Connection, name: str, values: dict[str, Any], exists: bool) -> None:
    """Update one source's state, or insert it the first time (the caller read it in this transaction)."""
    c = source_state_table.c
    if exists:
        conn.execute(update(source_state_table).where(c.name == name).values(**values))
    else:
        conn.execute(insert(source_state_table).values(name=name, **values))


def record_rejection(conn: Connection, values: dict[str, Any]) -> None:
    """Store a rejected dump; the same file (source, file_key) rejected again updates its row."""
    stmt = upsert(conn.dialect.name, rejection_table).values(**values)
    again = {name: stmt.excluded[name] for name in values if name not in ("source", "file_key")}
    conn.execute(stmt.on_conflict_do_update(index_elements=["source", "file_key"], set_={**again, "resolved_at": None}))


def rejection_known(conn: Connection, source: str, file_key: str) -> bool:
    c = rejection_table.c
    return conn.execute(select(c.id).where(c.source == source, c.file_key == file_key)).first() is not None


def resolve_rejections(conn: Connection, source: str, as_of: dt.date, now: dt.datetime) -> None:
    """A good dump from `source` captured on `as_of`, ingested after them, settles the rejections
    of dumps captured that day or before."""
    c = rejection_table.c
    conn.execute(
        update(rejection_table)
        .where(c.source == source, c.resolved_at.is_(None), c.as_of <= as_of, c.rejected_at <= now)
        .values(resolved_at=now)
    )
