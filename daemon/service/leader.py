"""Who runs the schedule, and who is alive.

    SQLite:      one daemon per store file (lock.py); the one that holds the file lock leads
    PostgreSQL:  any number of daemons, on any hosts; the one whose session holds an advisory
                 lock leads (schedules, ingests, sends); the others stand by, try the lock every
                 takeover/3 and lead within `[daemon] takeover` of the leader's death (its session
                 ends, and with it the lock: a leader that loses its connection loses the lead)
    every process (leaders, standbys, one-shot senders) beats in the `replica` table; a claim on
    an outbox row names the claimer's replica id, and a claimer whose heartbeat stopped is gone
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from paperdigest import clock
from paperdigest.store import queries

log = logging.getLogger("paperdigest")

LEADER_LOCK = 0x70646C64  # "pdld": the PostgreSQL advisory lock the leader's session holds
FORGET_AFTER = dt.timedelta(days=1)  # rows of processes gone this long are dropped


class Replica:
    """This process as the store sees it: a unique id (no guess from host names), host, pid."""

    def __init__(self, engine: Engine, role: str, takeover: dt.timedelta) -> None:
        self.engine = engine
        self.id = uuid.uuid4().hex
        self.role = role
        self.takeover = takeover
        self.started_at = clock.now()
        self.last_ok: float | None = None  # clock.monotonic() of the last heartbeat the store took

    def holds_leases(self) -> bool:
        """Whether this process's claims are surely still its own: its last heartbeat was recorded
        less than two thirds of the takeover time ago (others take its claims over at the takeover
        time, judged by the heartbeat's time). A sender that cannot beat stops sending."""
        if self.last_ok is None:
            return False
        return clock.monotonic() - self.last_ok < self.takeover.total_seconds() * 2 / 3

    @property
    def every(self) -> float:
        """Seconds between heartbeats (and between a standby's tries of the lock)."""
        return min(max(self.takeover.total_seconds() / 3, 0.2), 10.0)

    def beat(self, role: str | None = None) -> None:
        """Say this process is alive (advisory: a store that cannot take it is logged)."""
        self.role = role or self.role
        now = clock.now()
        started = clock.monotonic()
        values = {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "role": self.role,
            "started_at": self.started_at,
            "last_seen": now,
        }
        try:
            with self.engine.connect().execution_options(write=True) as conn, conn.begin():
                queries.beat(conn, values)
                if self.role == "leader":
                    queries.forget_replicas_before(conn, now - FORGET_AFTER)
        except SQLAlchemyError as exc:
            log.warning("cannot record this replica's heartbeat: %s", exc)
            return
        self.last_ok = started  # others judge it by `now`, taken before the commit

    def leave(self) -> None:
        try:
            with self.engine.connect().execution_options(write=True) as conn, conn.begin():
                queries.forget_replica(conn, self.id)
        except SQLAlchemyError as exc:
            log.warning("cannot remove this replica's heartbeat: %s", exc)


@contextmanager
def beating(replica: Replica) -> Iterator[Replica]:
    """Keep `replica`'s heartbeat going from a thread of its own for the duration (a one-shot
    `send` or `run --once`, whose main thread is busy sending), then remove its row."""
    replica.beat()
    done = threading.Event()

    def loop() -> None:
        while not done.wait(replica.every):
            replica.beat()

    thread = threading.Thread(target=loop, name="paperdigest-heartbeat", daemon=True)
    thread.start()
    try:
        yield replica
    finally:
        done.set()
        thread.join()
        replica.leave()


@contextmanager
def registered(engine: Engine, takeover: dt.timedelta, replica: Replica | None) -> Iterator[Replica]:
    """The replica that claims outbox rows: the daemon's own (it beats already), or, for a
    one-shot command, a `sender` registered for the duration and beating while it works."""
    if replica is not None:
        if replica.last_ok is None:
            replica.beat()
        yield replica
        return
    with beating(Replica(engine, "sender", takeover)) as mine:
        yield mine


class Leadership:
    """The PostgreSQL leader lock, held by a session of its own."""

    def __init__(self, engine: Engine, takeover: dt.timedelta) -> None:
        self.engine = engine
        self.takeover = takeover
        self.conn: Connection | None = None

    def try_lead(self) -> bool:
        """Take the lead if nobody holds it; False when another session does (or the store is down)."""
        if self.conn is not None:
            return self.still_leading()
        try:
            conn = self.engine.connect()
            # The server drops a session whose client vanished (a host that died without closing
            # its connection) within about the takeover time, and with it the lock.
            probe = max(int(self.takeover.total_seconds() / 3), 1)
            for setting, value in (("tcp_keepalives_idle", probe), ("tcp_keepalives_interval", probe)):
                conn.execute(text(f"SET {setting} = {value}"))
            conn.execute(text("SET tcp_keepalives_count = 2"))
            took = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK}).scalar_one())
            conn.commit()
        except SQLAlchemyError as exc:
            log.warning("cannot reach the store to try the lead: %s", exc)
            return False
        if not took:
            conn.close()
            return False
        self.conn = conn
        return True

    def still_leading(self) -> bool:
        """Whether this session still holds the lock (a lost connection loses it)."""
        if self.conn is None:
            return False
        try:
            held = self.conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                    " AND granted AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": LEADER_LOCK},
            ).scalar_one()
            self.conn.commit()
        except SQLAlchemyError as exc:
            log.error("lost the connection that holds the lead: %s", exc)
            self._drop()
            return False
        if not held:
            self._drop()
        return bool(held)

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK})
            self.conn.commit()
        except SQLAlchemyError:
            pass  # closing the session releases it anyway
        self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.invalidate()  # never back to the pool: the session ends, and its lock
                self.conn.close()
            except SQLAlchemyError:
                pass
            self.conn = None

    def holder(self) -> str:
        """Who leads now, for a message ("replica … on host …"), as far as the heartbeats say."""
        try:
            with self.engine.connect() as conn:
                leaders = [row for row in queries.replicas(conn) if row.role == "leader"]
        except SQLAlchemyError:
            return "another replica"
        if not leaders:
            return "another replica"
        newest = max(leaders, key=lambda row: row.last_seen)
        return f"replica {newest.id[:8]} on {newest.host} (pid {newest.pid})"
