"""Subscribers kept in the store, and unsubscribes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from paperdigest.store.tables import subscriber_table


def stored_subscribers(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(subscriber_table).order_by(subscriber_table.c.email)))


def save_subscriber(conn: Connection, email: str, values: dict[str, Any]) -> None:
    """Update the row of `email` (lower-cased), or make it."""
    c = subscriber_table.c
    found = conn.execute(update(subscriber_table).where(c.email == email.lower()).values(**values))
    if found.rowcount == 0:
        conn.execute(insert(subscriber_table).values(email=email.lower(), **values))


def delete_subscriber(conn: Connection, email: str) -> bool:
    found = conn.execute(delete(subscriber_table).where(subscriber_table.c.email == email.lower()))
    return found.rowcount > 0
