"""The replicas' heartbeats: who runs on this store, in what role, seen when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from paperdigest.store.tables import replica_table


def beat(conn: Connection, values: dict[str, Any]) -> None:
    """Record that a process is alive (its row made the first time)."""
    c = replica_table.c
    found = conn.execute(update(replica_table).where(c.id == values["id"]).values(**values))
    if found.rowcount == 0:
        conn.execute(insert(replica_table).values(**values))


def forget_replica(conn: Connection, replica_id: str) -> None:
    conn.execute(delete(replica_table).where(replica_table.c.id == replica_id))


def forget_replicas_before(conn: Connection, before: dt.datetime) -> None:
    """Drop the rows of processes gone long ago."""
    conn.execute(delete(replica_table).where(replica_table.c.last_seen < before))


def replicas(conn: Connection) -> list[Row[Any]]:
    c = replica_table.c
    return list(conn.execute(select(replica_table).order_by(c.role, c.started_at, c.id)))


def live_replicas(conn: Connection, since: dt.datetime) -> set[str]:
    """The ids of the processes whose last heartbeat is at or after `since`."""
    c = replica_table.c
    return {row.id for row in conn.execute(select(c.id).where(c.last_seen >= since))}
