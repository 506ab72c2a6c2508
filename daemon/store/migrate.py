"""The schema's version: what revision a store is at, and bringing it up to date (Alembic).

    empty store      -> created at the newest revision (any command may do this)
    made by 0.1.0    -> recognised (its tables, no version table), stamped 0001, then upgraded
    behind           -> `paperdigest db upgrade` (or `run`, at start) upgrades; other commands stop
    ahead            -> made by a newer paperdigest: every command stops

Upgrades run in one transaction holding the store's write lock (SQLite's BEGIN IMMEDIATE, a
PostgreSQL advisory lock), so two processes never migrate at once and the second finds the work
done.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from paperdigest.errors import StoreError

LEGACY = "0.1.0"  # a store made by release 0.1.0: its tables without Alembic's version table
LEGACY_REVISION = "0001"  # the revision that is exactly 0.1.0's schema
_MIGRATION_LOCK = 0x70646D67  # "pdmg": PostgreSQL advisory lock taken while migrating


class OutdatedStore(StoreError):
    """The store's schema is older than this program's, or newer."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(importlib.resources.files("paperdigest.store") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def _known(revision: str) -> bool:
    scripts = ScriptDirectory.from_config(_config())
    return any(script.revision == revision for script in scripts.walk_revisions())


def current(conn: Connection) -> str | None:
    """The store's revision: None for an empty store, LEGACY for one made by 0.1.0."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return MigrationContext.configure(conn).get_current_revision()
    return LEGACY if "paper" in tables else None


@dataclass(frozen=True, slots=True)
class Upgrade:
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def upgrade(engine: Engine) -> Upgrade:
    """Bring the store to the newest revision (a no-op when it is there), in one locked transaction."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        before = current(conn)
        if before is not None and before != LEGACY and not _known(before):
            raise OutdatedStore(_ahead(before))
        newest = head()
        if before != newest:
            config = _config(conn)
            if before == LEGACY:
                command.stamp(config, LEGACY_REVISION)
            command.upgrade(config, "head")
        return Upgrade(before, newest)


def check(engine: Engine, refuse_outdated: bool = True) -> None:
    """Create an empty store; refuse one that is newer than us, and (unless told not to) one that
    needs `paperdigest db upgrade`."""
    with engine.connect() as conn:
        revision = current(conn)
    if revision is None:
        upgrade(engine)
        return
    newest = head()
    if revision == newest:
        return
    if revision != LEGACY and not _known(revision):
        raise OutdatedStore(_ahead(revision))
    if not refuse_outdated:
        return
    shown = "release 0.1.0's schema" if revision == LEGACY else f"schema revision {revision}"
    raise OutdatedStore(
        f"the store has {shown}; this paperdigest needs revision {newest}: "
        "run `paperdigest db upgrade` (the daemon's `run` also upgrades at start)"
    )


def _ahead(revision: str) -> str:
    return (
        f"the store has schema revision {revision}, which this paperdigest does not know: "
        "it was made by a newer release; upgrade paperdigest"
    )
