"""Migrations (Alembic): a store made by 0.1.0 is recognised and upgraded in place, keeping every
row; the models and the migrations agree; an upgraded store is the same as a new one; outdated
and newer stores are refused in one line. On both engines."""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.pool import NullPool

from paperdigest.store import migrate
from paperdigest.store.engine import open_engine
from paperdigest.store.tables import metadata
from tests import legacy
from tests.conftest import SEEDS, run_subprocess
from tests.storehelp import connect, rows

NOW = "2026-11-23T12:00:00+00:00"  # the 0.1.0 run sent demo@localhost the digest of 2026-11-23 07:00Z


@pytest.fixture
def old_store(new_store: Callable[..., str]) -> tuple[str, dict[str, int]]:
    url = new_store(empty=True)
    return url, legacy.make_store(url)


def test_a_0_1_0_store_is_refused_until_upgraded(cli: Any, old_store: tuple[str, dict[str, int]]) -> None:
    url, _ = old_store
    for command in (["status"], ["papers"], ["send"], ["ingest", "seeds"]):
        result = cli("--db", url, *command)
        assert result.code == 1, command
        assert "paperdigest db upgrade" in result.err and len(result.err.strip().splitlines()) == 1
    current = cli("--db", url, "db", "current")
    assert current.code == 0 and "0.1.0" in current.out and "db upgrade" in current.out


def test_db_current_on_a_missing_sqlite_file_creates_nothing(cli: Any, tmp_path: Path) -> None:
    store = tmp_path / "nowhere" / "papers.db"
    current = cli("--db", f"sqlite:///{store}", "db", "current")
    assert current.code == 0 and f"no store at {store} (nothing created)" in current.out
    assert not store.exists() and not store.parent.exists()


def test_db_upgrade_keeps_every_row_and_is_idempotent(cli: Any, old_store: tuple[str, dict[str, int]]) -> None:
    url, made = old_store
    first = cli("--db", url, "db", "upgrade")
    assert first.code == 0 and f"from 0.1.0 to schema revision {migrate.head()}" in first.out
    assert legacy.counts(url) == made
    again = cli("--db", url, "db", "upgrade")
    assert again.code == 0 and "already" in again.out
    assert cli("--db", url, "db", "current").out.strip() == f"{migrate.head()} (the newest)"
    papers = cli("--db", url, "papers", "--top", "500", "--json").json_lines()
    assert len(papers) == made["paper"]


def test_run_upgrades_at_start_and_goes_on_without_repeating_a_digest(
    old_store: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """The embedded default (seeds, demo@localhost) on the store 0.1.0 left: the seeds are known
    by their hashes, the digest of the period was sent, so nothing is ingested or mailed again."""
    url, made = old_store
    env = {"STATE_DIRECTORY": str(tmp_path / "state"), "PAPERDIGEST_NOW": NOW}
    result = run_subprocess("--db", url, "run", "--once", env=env)
    assert result.code == 0, result.out + result.err
    assert legacy.counts(url) == made
    outbox = tmp_path / "state" / "outbox"
    assert not outbox.exists() or not list(outbox.glob("*.eml"))
    later = run_subprocess("--db", url, "run", "--once", env={**env, "PAPERDIGEST_NOW": "2026-11-24T12:00:00+00:00"})
    assert later.code == 0
    # The next period: nothing new since the 0.1.0 digest's window (the seeds are known), so an
    # empty period is recorded and nothing is mailed.
    assert not outbox.exists() or not list(outbox.glob("*.eml"))
    assert legacy.counts(url)["outbox"] == made["outbox"] + 1


def test_an_empty_store_is_created_at_the_newest_revision(new_store: Callable[..., str]) -> None:
    engine = open_engine(new_store(empty=True))
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
    engine.dispose()


# Expression indexes cannot be reflected (autogenerate skips them): they are checked by name.
EXPRESSION_INDEX = pytest.mark.filterwarnings("ignore:.*expression-based index", "ignore:.*expression.*index")


def expression_indexes(conn: Connection) -> set[str]:
    if conn.dialect.name == "postgresql":
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexdef ILIKE '%%coalesce%%'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%%coalesce%%'"
    return {row[0] for row in conn.exec_driver_sql(sql)}


def schema_of(url: str) -> dict[str, Any]:
    """The store's schema as the database reports it: each table's columns (type, nullability),
    primary key, foreign keys, unique constraints and indexes; PostgreSQL's sequences and their types."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        found = inspect(engine)
        schema: dict[str, Any] = {
            table: {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
                "primary key": found.get_pk_constraint(table)["constrained_columns"],
                "foreign keys": sorted(
                    (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
                    for fk in found.get_foreign_keys(table)
                ),
                "unique": sorted((u["name"], u["column_names"]) for u in found.get_unique_constraints(table)),
                "indexes": sorted((i["name"], i["column_names"], bool(i["unique"])) for i in found.get_indexes(table)),
            }
            for table in sorted(found.get_table_names())
        }
        with engine.connect() as conn:
            schema["expression indexes"] = expression_indexes(conn)
            if conn.dialect.name == "postgresql":
                sequences = "SELECT sequencename, data_type::text, max_value FROM pg_sequences ORDER BY 1"
                schema["sequences"] = [tuple(row) for row in conn.exec_driver_sql(sequences)]
        return schema
    finally:
        engine.dispose()


@EXPRESSION_INDEX
def test_the_models_and_the_migrations_agree(new_store: Callable[..., str]) -> None:
    engine = open_engine(new_store(empty=True))
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert expression_indexes(conn) == {"uq_paper_title_key_arxiv"}
    engine.dispose()
    assert differences == []


@EXPRESSION_INDEX
def test_an_upgraded_0_1_0_store_has_the_schema_of_a_new_one(
    cli: Any, old_store: tuple[str, dict[str, int]], new_store: Callable[..., str]
) -> None:
    url, _ = old_store
    assert cli("--db", url, "db", "upgrade").code == 0
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()
    fresh = new_store(empty=True)
    open_engine(fresh).dispose()
    assert schema_of(url) == schema_of(fresh)


@pytest.mark.postgresql_only  # SQLite's INTEGER PRIMARY KEY is a 64-bit rowid from the start
@EXPRESSION_INDEX
def test_an_upgraded_0_1_0_store_takes_ids_past_2_to_the_31(
    cli: Any, old_store: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """0.1.0 made 32-bit ids and sequences on PostgreSQL; after 0003, ids past 2**31 are stored."""
    url, _ = old_store
    assert cli("--db", url, "db", "upgrade").code == 0
    big = 2**31 + 10
    with connect(url) as conn:
        for table in ("dump", "paper", "outbox"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {big})")
    again = tmp_path / "2026-12-01_again.txt"  # the seed's papers in a dump of its own (other bytes)
    again.write_bytes((SEEDS / "004_d0e4e6143df38525.txt").read_bytes() + b"\n")
    assert cli("--db", url, "ingest", str(again), "--as-of", "2026-12-01").code == 0
    assert rows(url, "SELECT max(id) FROM dump") == [(big + 1,)]
    assert rows(url, "SELECT count(*) FROM sighting WHERE dump_id = :id", id=big + 1) == [(75,)]


def test_a_store_from_a_newer_release_is_refused(cli: Any, db_url: str) -> None:
    open_engine(db_url).dispose()
    with connect(db_url) as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    for command in (["status"], ["db", "upgrade"]):
        result = cli("--db", db_url, *command)
        assert result.code == 1 and "newer release" in result.err


def test_the_migrations_ship_in_the_package() -> None:
    versions = importlib.resources.files("paperdigest.store") / "migrations" / "versions"
    names = sorted(p.name for p in versions.iterdir() if p.name.endswith(".py") and p.name[0].isdigit())
    assert names[0].startswith("0001") and len(names) >= 3
    assert os.path.basename(str(importlib.resources.files("paperdigest.store") / "migrations" / "env.py"))
