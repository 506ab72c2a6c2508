"""Opening the store: the URL, SQLite pragmas (WAL), the schema."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from paperdigest.errors import StoreError, UsageError
from paperdigest.paths import private_dir, private_file, state_dir
from paperdigest.store import migrate

DB_FILE = "papers.db"


def default_url(env: dict[str, str] | os._Environ[str] | None = None) -> str:
    return f"sqlite:///{state_dir(env) / DB_FILE}"


def resolve_url(cli_url: str | None, config_url: str | None = None) -> str:
    """--db, else $PAPERDIGEST_DB, else the config's [store] url, else the embedded default."""
    return cli_url or os.environ.get("PAPERDIGEST_DB") or config_url or default_url()


EMBEDDED_STORE = "the embedded default's store"  # url_origin of the store under the state directory


def url_origin(cli_url: str | None, config_url: str | None = None, config_origin: str = "the config") -> str:
    """Where resolve_url's answer was given, for an error about it: "--db", "PAPERDIGEST_DB", or
    the config file and its key."""
    if cli_url:
        return "--db"
    if os.environ.get("PAPERDIGEST_DB"):
        return "PAPERDIGEST_DB"
    return f"{config_origin}: store.url" if config_url else EMBEDDED_STORE


Schema = Literal["read", "check", "create", "upgrade", "none"]


def open_engine(url: str, schema: Schema = "check", origin: str = "--db / PAPERDIGEST_DB / store.url") -> Engine:
    """An engine on the store. SQLite gets WAL, foreign keys and a busy timeout.

    `schema`: "read" (the commands that only look) refuses a SQLite file that is missing, empty or
    holds no paperdigest store, creating nothing (a mistyped path is not a new, healthy store), and
    is "check" otherwise; "check" creates an empty store and refuses one whose schema is out of
    date (it names `paperdigest db upgrade`); "create" creates an empty store and leaves any other
    alone (the daemon upgrades it under its lock); "upgrade" brings it up to date; "none" leaves it
    alone. `origin` says where the URL was given (url_origin), for the errors about it."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise UsageError(f"{origin}: not a database URL (e.g. sqlite:///papers.db)") from None
    kwargs: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise UsageError(
            f"{origin}: {backend} is not supported: the store is SQLite (sqlite:///PATH) or PostgreSQL"
            " (postgresql+psycopg://USER@HOST/DB)"
        )
    is_sqlite = backend == "sqlite"
    store = sqlite_file(url)
    if store is not None and schema == "read":
        refuse_no_store(store)
    if store is not None:
        try:
            private_dir(store.parent)
            private_file(store)  # SQLite gives its -wal and -shm files the store's mode
        except OSError as exc:
            raise StoreError(f"cannot create the store {store}: {exc.strerror}") from None
    try:
        engine = create_engine(parsed, **kwargs)
    except ImportError as exc:  # the URL names a driver that is not installed
        hint = " (install the PostgreSQL driver: pip install 'paperdigest[postgresql]', and use postgresql+psycopg://)"
        shown = parsed.render_as_string(hide_password=True)
        raise UsageError(f"{origin}: cannot use {shown}: {exc}{hint if not is_sqlite else ''}") from None
    except ArgumentError as exc:
        raise UsageError(f"{origin}: cannot use {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if is_sqlite:
        _sqlite_setup(engine)
    try:
        if schema == "read" and not is_sqlite:
            _refuse_no_schema(engine, parsed.render_as_string(hide_password=True))
        if schema in ("read", "check", "create"):
            migrate.check(engine, refuse_outdated=schema != "create")
        elif schema == "upgrade":
            migrate.upgrade(engine)
    except SQLAlchemyError as exc:
        shown = parsed.render_as_string(hide_password=True)
        raise StoreError(f"cannot open the store {shown}: {describe(exc)}") from None
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store's URL (~ expanded); None for PostgreSQL, :memory: or a bad URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def no_store(store: Path) -> str | None:
    """Why the SQLite file `store` holds no paperdigest store (missing, empty, or another
    program's database), or None when it holds one, or may (then opening it says what is wrong).
    Looks without changing anything: no file, folder, journal mode or table is created."""
    try:
        size = store.stat().st_size
    except FileNotFoundError:
        return "no such file"
    except OSError:
        return None  # unreadable: opening it names the reason
    if size == 0:
        return "an empty file"
    try:  # mode=rw, not ro: a read-only connection would leave a WAL store's -wal and -shm behind
        with contextlib.closing(sqlite3.connect(f"{store.resolve().as_uri()}?mode=rw", uri=True)) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return None  # not a database, locked, ...: opening it names the reason
    if {"alembic_version", "paper"} & tables:  # a store of any revision, or release 0.1.0's
        return None
    return "a SQLite database without paperdigest's tables" if tables else "a SQLite database without tables"


def refuse_no_store(store: Path) -> None:
    """Raise StoreError, naming the file, when `store` holds no paperdigest store (see no_store)."""
    why = no_store(store)
    if why is not None:
        raise StoreError(
            f"no store at {store} ({why}; nothing created): check --db, PAPERDIGEST_DB or [store] url; "
            "`paperdigest run --once`, `ingest` or `db upgrade` creates one"
        )


def _refuse_no_schema(engine: Engine, shown: str) -> None:
    """refuse_no_store for PostgreSQL: a database without paperdigest's tables (empty, or another
    program's) is refused for a command that only looks, and left as it was."""
    found = set(inspect(engine).get_table_names())
    if {"alembic_version", "paper"} & found:  # a store of any revision, or release 0.1.0's
        return
    why = "a database without paperdigest's tables" if found else "a database without tables"
    engine.dispose()
    raise StoreError(
        f"no store in {shown} ({why}; nothing created): check --db, PAPERDIGEST_DB or [store] url; "
        "`paperdigest run --once`, `ingest` or `db upgrade` creates one"
    )


def shown_url(url: str) -> str:
    """The URL with any password hidden, for printing and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<invalid URL>"


def describe(exc: SQLAlchemyError) -> str:
    """The driver's own reason, without the SQL statement and its parameters, on one line
    (psycopg's reasons span several: "Connection refused\n\tIs the server running ...")."""
    orig = getattr(exc, "orig", None)
    return " ".join(f"{exc.__class__.__name__}: {orig if orig is not None else exc}".split())


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so a read-then-write ingest cannot interleave.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")
