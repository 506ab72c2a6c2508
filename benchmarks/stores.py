"""Where the benchmark's stores live: SQLite files, or databases on a throwaway PostgreSQL server.

Each run gets a fresh store (a new file, or a new database); `copy` makes one from a prepared
store (SQLite's backup API, PostgreSQL's CREATE DATABASE ... TEMPLATE). `counts` and `schema`
are what the benchmark compares between our store and the floor's.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
COMPARED_TABLES = ("dump", "paper", "sighting")


class Engine(Protocol):
    name: str

    def fresh(self, label: str) -> str: ...

    def copy(self, source: str, label: str) -> str: ...

    def drop(self, url: str) -> None: ...

    def rows(self, url: str, sql: str) -> list[tuple[Any, ...]]: ...

    def schema(self, url: str) -> list[str]: ...

    def server_pids(self) -> list[int]: ...

    def version(self) -> str: ...


def counts(engine: Engine, url: str) -> dict[str, int]:
    """What both sides of an ingest must agree on."""
    papers, upvotes = engine.rows(url, "SELECT count(*), coalesce(sum(upvotes), 0) FROM paper")[0]
    sightings, seen = engine.rows(url, "SELECT count(*), coalesce(sum(upvotes), 0) FROM sighting")[0]
    dumps = engine.rows(url, "SELECT count(*) FROM dump")[0][0]
    return {"dumps": int(dumps), "papers": int(papers), "sightings": int(sightings), "upvotes_sum": int(upvotes),
            "sighting_upvotes_sum": int(seen)}


def _normal(sql: str) -> str:
    sql = " ".join(sql.split()).lower()
    return re.sub(r"\s*([(),])\s*", r"\1", sql)


class Sqlite:
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def fresh(self, label: str) -> str:
        path = self.folder / f"{label}.db"
        self._remove(path)
        return f"sqlite:///{path}"

    def copy(self, source: str, label: str) -> str:
        url = self.fresh(label)
        src, dst = sqlite3.connect(self._path(source)), sqlite3.connect(self._path(url))
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return url

    def drop(self, url: str) -> None:
        self._remove(self._path(url))

    def rows(self, url: str, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self._path(url))
        try:
            return [tuple(row) for row in conn.execute(sql)]
        finally:
            conn.close()

    def schema(self, url: str) -> list[str]:
        """The compared tables' CREATE TABLE and CREATE INDEX statements, and the indexes SQLite
        makes for their UNIQUE constraints, normalised (white space, case)."""
        marks = ", ".join("?" * len(COMPARED_TABLES))
        conn = sqlite3.connect(self._path(url))
        try:
            found = [_normal(sql) for (sql,) in conn.execute(
                f"SELECT sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL", COMPARED_TABLES)]
            for table in COMPARED_TABLES:
                for _, name, unique, origin, _ in conn.execute(f"PRAGMA index_list({table})"):
                    columns = [row[2] for row in conn.execute(f"PRAGMA index_info({name})")]
                    found.append(f"{table}: {origin} index, unique={unique}, on {columns}")
        finally:
            conn.close()
        return sorted(found)

    def server_pids(self) -> list[int]:
        return []

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    @staticmethod
    def _path(url: str) -> Path:
        return Path(url.removeprefix("sqlite:///"))

    @staticmethod
    def _remove(path: Path) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class Postgres:
    name = "postgresql"

    def __init__(self, server: Any) -> None:
        self.server = server  # tests.pgserver.PgServer

    def _connect(self, database: str, autocommit: bool = False) -> Any:
        import psycopg  # noqa: PLC0415  (lazy on purpose: a SQLite-only run never needs it)

        return psycopg.connect(f"postgresql://{self.server.user}@127.0.0.1:{self.server.port}/{database}",
                               autocommit=autocommit)

    def _admin(self, sql: str) -> None:
        with self._connect("postgres", autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self, label: str) -> str:
        self._admin(f"DROP DATABASE IF EXISTS {label}")
        self._admin(f"CREATE DATABASE {label}")
        return str(self.server.url(label))

    def copy(self, source: str, label: str) -> str:
        self._admin(f"DROP DATABASE IF EXISTS {label}")
        self._admin(f"CREATE DATABASE {label} TEMPLATE {self._name(source)}")
        return str(self.server.url(label))

    def drop(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self._name(url)}")

    def rows(self, url: str, sql: str) -> list[tuple[Any, ...]]:
        with self._connect(self._name(url)) as conn:
            return [tuple(row) for row in conn.execute(sql)]

    def schema(self, url: str) -> list[str]:
        """The compared tables' columns (types, nullability, defaults), constraints and indexes."""
        tables = ", ".join(f"'{t}'" for t in COMPARED_TABLES)
        columns = self.rows(url, f"""
            SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default
            FROM information_schema.columns WHERE table_schema = 'public' AND table_name IN ({tables})""")
        constraints = self.rows(url, f"""
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text IN ({tables})""")
        indexes = self.rows(url, f"""
            SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ({tables})""")
        found = [f"column {' '.join(map(str, row))}" for row in columns]
        found += [f"constraint {' '.join(map(str, row))}" for row in constraints]
        found += [f"index {table}: {_normal(definition)}" for table, definition in indexes]
        return sorted(found)

    def server_pids(self) -> list[int]:
        pid_file = Path(self.server.folder) / "data" / "postmaster.pid"
        return [int(pid_file.read_text().split()[0])]

    def version(self) -> str:
        with self._connect("postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"

    @staticmethod
    def _name(url: str) -> str:
        return url.rsplit("/", 1)[1]


@contextlib.contextmanager
def postgresql_server() -> Iterator[Any]:
    """A throwaway server (tests/pgserver.py): initdb in a temporary folder, fsync off."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import pgserver  # noqa: PLC0415  (lazy on purpose: only when PostgreSQL is measured)

    with pgserver.server() as server:
        yield server
