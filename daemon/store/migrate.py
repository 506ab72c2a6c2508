"""The schema's version: what revision a store is at, and bringing it up to date (Alembic).

    empty store      -> created at the newest revision (any command may do this)
    made by 0.1.0    -> recognised (its tables, no version table), stamped 0001, then upgraded
    behind           -> `paperdigest db upgrade` (or `run`, at start) upgrades; other commands stop
    ahead            -> made by a newer paperdigest: every command stops

Upgrades run in one transaction holding the store's write lock (SQLite's BEGIN IMMEDIATE, a
PostgreSQL advisory lock), so two processes never migrate at once and the second finds the work
done.

Alembic is imported only to migrate, or to judge a store that is not at the newest revision:
opening a store that is up to date (every command, nearly always) reads its revision with one
SELECT and compares it with the newest one named by the revision files (`newest_named`), which
tests/test_startup.py checks against Alembic's own `head()`.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from paperdigest.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

LEGACY = "0.1.0"  # a store made by release 0.1.0: its tables without Alembic's version table
LEGACY_REVISION = "0001"  # the revision that is exactly 0.1.0's schema
_MIGRATION_LOCK = 0x70646D67  # "pdmg": PostgreSQL advisory lock taken while migrating


class OutdatedStore(StoreError):
    """The store's schema is older than this program's, or newer."""


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # noqa: PLC0415  lazy: Alembic only to migrate or judge an old store

    config = Config()
    config.set_main_option("script_location", str(importlib.resources.files("paperdigest.store") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    from alembic.script import ScriptDirectory  # noqa: PLC0415  lazy: Alembic only to migrate or judge

    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def _known(revision: str) -> bool:
    from alembic.script import ScriptDirectory  # noqa: PLC0415  lazy: Alembic only to migrate or judge

    scripts = ScriptDirectory.from_config(_config())
    return any(script.revision == revision for script in scripts.walk_revisions())


def current(conn: Connection) -> str | None:
    """The store's revision: None for an empty store, LEGACY for one made by 0.1.0."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(rows) <= 1:  # one line of history, as ours is: what Alembic would say, without Alembic
            return rows[0] if rows else None
        from alembic.runtime.migration import MigrationContext  # noqa: PLC0415  lazy: branches (never ours)

        return MigrationContext.configure(conn).get_current_revision()
    return LEGACY if "paper" in tables else None


_NAMED = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:\"([^\"]*)\"|'([^']*)'|None)", re.MULTILINE)


@functools.cache
def newest_named() -> str | None:
    """The newest revision as the revision files name it (`revision = "..."`, `down_revision =
    "..."`), read as text: the one no other revises, when there is exactly one. None when that is
    not plain (then the caller asks Alembic)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    folder = importlib.resources.files("paperdigest.store") / "migrations" / "versions"
    for script in folder.iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        found = {name: a or b for name, a, b in _NAMED.findall(script.read_text(encoding="utf-8"))}
        if "revision" not in found:
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            revised.add(found["down_revision"])
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


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
            from alembic import command  # noqa: PLC0415  lazy: Alembic only to migrate or judge

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
    if revision == newest_named():
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
